"""How a run's status reads on screen: one table, used by the training widget, the dedup comparison and the sidebar,
so a run that is "⏹️ Stopped" on its lesson page is not "paused" or "ended" somewhere else; and, the same way
everywhere, where a waiting run stands in line and when it should start."""

from __future__ import annotations

import math

from engine.number_format import duration
from engine.train.status import RunStatus

# status -> (emoji, label on the run's own panel, what the sidebar says happened to it)
STATUS_TABLE: dict[RunStatus, tuple[str, str, str]] = {
    RunStatus.QUEUED: ("⏳", "Queued", "is waiting in line"),
    RunStatus.RUNNING: ("🟢", "Running", "is training"),
    RunStatus.FINISHED: ("✅", "Finished", "finished"),
    RunStatus.STOPPED: ("⏹️", "Stopped", "stopped"),
    RunStatus.DIVERGED: ("💥", "Diverged", "diverged"),
    RunStatus.FAILED: ("⚠️", "Failed", "failed"),
    RunStatus.INTERRUPTED: ("⚠️", "Interrupted", "was interrupted"),
}


def _row(status: str) -> tuple[str, str, str]:
    return STATUS_TABLE[RunStatus.parse(status, RunStatus.STOPPED)]


def label(status: str) -> str:
    """The status as a badge.

    >>> label("finished")
    '✅ Finished'
    """
    emoji, word, _ = _row(status)
    return f"{emoji} {word}"


def sentence(status: str, what: str) -> str:
    """What happened to a run, as the start of a sentence about it.

    >>> sentence("interrupted", "Your run")
    '⚠️ Your run was interrupted'
    """
    emoji, _, happened = _row(status)
    return f"{emoji} {what} {happened}"


def ordinal(n: int) -> str:
    """A place in line as people say it.

    >>> ordinal(1), ordinal(2), ordinal(3), ordinal(4), ordinal(11), ordinal(12), ordinal(22), ordinal(103)
    ('1st', '2nd', '3rd', '4th', '11th', '12th', '22nd', '103rd')
    """
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


SOON_S = 5.0  # an estimate below this reads "in a moment": the run starts with the next one to end


def about(seconds: float) -> str:
    """An estimated wait, rounded as a forecast should be (to 5 s, half a minute, a quarter hour), in the course's
    duration words (engine.number_format.duration).

    >>> about(7.2), about(44), about(137), about(200), about(9000)
    ('5 s', '45 s', '2.5 minutes', '3.5 minutes', '2.5 hours')
    """
    step = 5.0 if seconds < 60 else 30.0 if seconds < 7200 else 900.0
    return duration(max(step, step * round(seconds / step)))


def waiting_phrase(position: int | None, starts_in_s: float | None) -> str:
    """Where a waiting run stands, as a phrase for a table cell, a metric's label or the sidebar.

    >>> waiting_phrase(3, 137.0), waiting_phrase(1, 2.0)
    ('waiting in line: 3rd, starts in about 2.5 minutes', 'waiting in line: 1st, starts in a moment')
    >>> waiting_phrase(2, None), waiting_phrase(None, None)
    ('waiting in line: 2nd', 'waiting in line')
    """
    parts = [ordinal(position)] if position else []
    if starts_in_s is not None and math.isfinite(starts_in_s):
        parts.append("starts in a moment" if starts_in_s < SOON_S else f"starts in about {about(starts_in_s)}")
    return "waiting in line" + (f": {', '.join(parts)}" if parts else "")


def waiting_sentence(position: int | None, starts_in_s: float | None) -> str:
    """A waiting run's place and estimated start, as two sentences for the run's own panel.

    >>> waiting_sentence(3, 137.0)
    'Waiting in line: **3rd**. It should start in about 2.5 minutes.'
    >>> waiting_sentence(1, 0.0), waiting_sentence(None, None)
    ('Waiting in line: **1st**. It should start in a moment.', 'Waiting in line.')
    """
    where = f"Waiting in line: **{ordinal(position)}**." if position else "Waiting in line."
    if starts_in_s is None or not math.isfinite(starts_in_s):
        return where
    when = "in a moment" if starts_in_s < SOON_S else f"in about {about(starts_in_s)}"
    return f"{where} It should start {when}."


def why_waiting(slots: int, running_per_learner: int) -> str:
    """Why a run waits, in one sentence: the server's slots are shared, and each learner has a few of them at most.

    >>> why_waiting(1, 1)
    'Runs share this server, which trains one run at a time, and each learner has one run training at a time.'
    >>> why_waiting(4, 2)
    'Runs share this server, which trains 4 runs at a time, and each learner has up to 2 runs training at a time.'
    """
    server = "one run" if slots == 1 else f"{slots:,} runs"
    each = "one run" if running_per_learner == 1 else f"up to {running_per_learner:,} runs"
    return f"Runs share this server, which trains {server} at a time, and each learner has {each} training at a time."
