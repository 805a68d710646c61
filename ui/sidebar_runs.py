"""The sidebar's list of the learner's training runs that the current page does not show itself.

The runs listed are every run the progress store says the learner has (ui.run_view.learner_runs: a listing, each
live run with its newest record only), whatever widget started them: listing one is also what sends its heartbeat, so a run missing here would stop itself five minutes
after its learner left its page. A series of runs (lesson 9's scaling sweep) gets one line. Drawn after the page
by ui/sidebar.py, once the warm-up thread has imported the engine.
"""

from __future__ import annotations

import math
import re

import streamlit as st

from engine.train.status import RunStatus
from ui import run_status, run_view

RUN_NAMES = {"main": "your run", "diverge": "the divergence demo", "bpe": "your BPE run",
             "dedup-with": "the with-duplicates run", "dedup-without": "the deduplicated run",
             "overfit": "the overfitting run", "finetune": "your fine-tune"}


def run_name(run: run_view.RunView) -> str:
    """How the sidebar names a run: a known key's name, else the key itself (a widget added since)."""
    return RUN_NAMES.get(run.run_key, f"your “{run.run_key}” run")


# Runs a widget starts as a series under one prefix (lesson 9's scaling sweep: sweep-0 ... sweep-4) get one line
# together, not one each: five rungs, four of them queued, would bury everything else in the sidebar.
_SERIES = re.compile(r"(?P<group>.+)-(?P<index>\d+)")
SERIES_NAMES = {"sweep": "your scaling sweep", "ddp": "your one- and two-process runs"}


def series_of(run_key: str) -> str | None:
    """The series a run key belongs to, if it is one.

    >>> series_of("sweep-3"), series_of("dedup-with")
    ('sweep', None)
    """
    m = _SERIES.fullmatch(run_key)
    return m["group"] if m else None


def _series_line(group: str, runs: list[run_view.RunView], shown: set[str]) -> None:
    """One line for a series: which of its runs trains (and heartbeats for all of them), or how it ended."""
    what = SERIES_NAMES.get(group, f"your “{group}” runs")
    runs = sorted(runs, key=lambda r: int(r.run_key.rsplit("-", 1)[1]))
    active = [r for r in runs if r.active]
    for run in active:
        shown.add(run.run_id)
        run_view.heartbeat(run)
    training = next((i for i, r in enumerate(runs) if r.status == RunStatus.RUNNING), None)
    if training is not None:
        st.caption(f"🟢 Training {what}: run {training + 1} of {len(runs)}, step {runs[training].step:,}.")
    elif active:
        first = min(active, key=lambda r: (r.queue_position is None, r.queue_position or 0))
        st.caption(f"⏳ {what.capitalize()} is {run_status.waiting_phrase(first.queue_position, first.starts_in_s)}.")
    elif any(r.run_id in shown for r in runs):
        ended = next((r.status for r in runs if r.status != RunStatus.FINISHED), RunStatus.FINISHED)
        st.caption(run_status.sentence(ended, what.capitalize()) + ".")


def _final_loss(run: run_view.RunView) -> str:
    """", validation loss 1.84" for an ended run (its summary has it; its newest record may not), else ""."""
    loss = (run.summary or {}).get("final_val_loss")
    if loss is None:
        loss = run.final_val_loss
    return f", validation loss {loss:.2f}" if isinstance(loss, int | float) and math.isfinite(loss) else ""


_SHOWN_KEY = "sidebar-runs-shown"  # run ids this session's sidebar has listed as training


@st.fragment(run_every=2.0)
def _run_status(learner_id: int) -> None:
    """The learner's training runs that this page does not show itself. Each poll is also the run's heartbeat, so a
    run keeps going while its learner reads other lessons, and stops itself only when nobody has the course open."""
    shown = st.session_state.setdefault(_SHOWN_KEY, set())
    series: dict[str, list[run_view.RunView]] = {}
    for run in run_view.learner_runs(learner_id):
        if run_view.is_polled_by_page(run):
            continue
        if (group := series_of(run.run_key)) is not None:
            series.setdefault(group, []).append(run)
            continue
        what = run_name(run)
        if run.active:
            shown.add(run.run_id)
            run_view.heartbeat(run)
            if run.status == RunStatus.QUEUED:
                st.caption(f"⏳ {what.capitalize()} is {run_status.waiting_phrase(run.queue_position, run.starts_in_s)}.")
            else:  # the step only: a listing holds the newest record, which is seldom an evaluation
                st.caption(f"🟢 Training {what}: step {run.step:,}.")
        elif run.run_id in shown:  # it ended while the learner was on this page: say so until they move on
            st.caption(run_status.sentence(run.status, what.capitalize()) + f"{_final_loss(run)}.")
    for group, runs in series.items():
        _series_line(group, runs, shown)


def render(learner_id: int) -> None:
    """The learner's active runs that the page does not poll itself, in a polling fragment. With none left to
    show, nothing polls: an idle sidebar costs the browser nothing."""
    if any(not run_view.is_polled_by_page(run) for run in run_view.active_runs(learner_id)):
        with st.sidebar:
            _run_status(learner_id)
