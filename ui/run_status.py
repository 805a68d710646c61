"""How a run's status reads on screen: one table, used by the training widget, the dedup comparison and the sidebar,
so a run that is "⏹️ Stopped" on its lesson page is not "paused" or "ended" somewhere else."""

from __future__ import annotations

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
