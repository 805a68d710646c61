"""The sidebar: who is learning (pick or create a profile), the course's overall progress, and training runs the
current page does not show itself.

The runs listed are every run the progress store says the learner has (ui.run_view.learner_runs), whatever widget
started them: listing one is also what sends its heartbeat, so a run missing here would stop itself five minutes
after its learner left its page."""

from __future__ import annotations

import math
import re

import streamlit as st

from ui import run_status, run_view, session


def _on_pick() -> None:
    chosen = st.session_state["sidebar-learner"]
    found = next((lr for lr in session.store().learners() if lr.id == chosen), None)
    if found:
        session.switch_learner(found)


def _on_create() -> None:
    name = st.session_state.get("sidebar-new-name", "")
    try:
        new = session.store().get_or_create_learner(name)
    except ValueError as err:
        st.session_state["sidebar-error"] = str(err)
        return
    st.session_state.pop("sidebar-error", None)
    st.session_state["sidebar-new-name"] = ""
    session.switch_learner(new)


RUN_NAMES = {"main": "your run", "diverge": "the divergence demo", "bpe": "your BPE run",
             "dedup-with": "the with-duplicates run", "dedup-without": "the deduplicated run",
             "overfit": "the overfitting run", "finetune": "your fine-tune"}


def run_name(run: run_view.RunView) -> str:
    """How the sidebar names a run: a known key's name, else the key itself (a widget added since)."""
    return RUN_NAMES.get(run.run_key, f"your “{run.run_key}” run")


# Runs a widget starts as a series under one prefix (lesson 9's scaling sweep: sweep-0 ... sweep-4) get one line
# together, not one each: five rungs, four of them queued, would bury everything else in the sidebar.
_SERIES = re.compile(r"(?P<group>.+)-(?P<index>\d+)")
SERIES_NAMES = {"sweep": "your scaling sweep"}


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
    training = next((i for i, r in enumerate(runs) if r.status == "running"), None)
    if training is not None:
        st.caption(f"🟢 Training {what}: run {training + 1} of {len(runs)}, step {runs[training].step:,}.")
    elif active:
        st.caption(f"⏳ {what.capitalize()} is waiting in line (position {min(r.queue_position or 0 for r in active)}).")
    elif any(r.run_id in shown for r in runs):
        ended = next((r.status for r in runs if r.status != "finished"), "finished")
        st.caption(run_status.sentence(ended, what.capitalize()) + ".")


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
        loss = run.final_val_loss
        at_loss = f", validation loss {loss:.2f}" if loss is not None and math.isfinite(loss) else ""
        if run.active:
            shown.add(run.run_id)
            run_view.heartbeat(run)
            if run.status == "queued":
                st.caption(f"⏳ {what.capitalize()} is waiting in line (position {run.queue_position}).")
            else:
                st.caption(f"🟢 Training {what}: step {run.step:,}{at_loss}.")
        elif run.run_id in shown:  # it ended while the learner was on this page: say so until they move on
            st.caption(run_status.sentence(run.status, what.capitalize()) + f"{at_loss}.")
    for group, runs in series.items():
        _series_line(group, runs, shown)


def render() -> None:
    """Who is learning and the course's overall progress. Drawn before the page (see render_runs for after)."""
    run_view.new_page_run()
    me = session.learner()
    learners = session.store().learners()
    # The selectbox's own state must follow the current learner (it changes from the "New profile" form too).
    st.session_state["sidebar-learner"] = me.id
    with st.sidebar:
        st.selectbox(
            "Learner profile",
            options=[lr.id for lr in learners],
            format_func=lambda i: next(lr.name for lr in learners if lr.id == i),
            key="sidebar-learner",
            on_change=_on_pick,
            help="Progress, quiz answers and training runs are saved per profile.",
        )
        with st.popover("New profile", icon=":material/person_add:", use_container_width=True):
            st.text_input("Your name", key="sidebar-new-name", max_chars=40, placeholder="e.g. Ada")
            st.button("Create and switch", key="sidebar-create", on_click=_on_create, type="primary")
        if "sidebar-error" in st.session_state:
            st.error(st.session_state["sidebar-error"])
        course = session.course()
        done = session.store().completed(me.id)
        total = len(course.lessons)
        finished = sum(1 for lesson in course.lessons if lesson.id in done)
        st.progress(finished / total if total else 0.0, text=f"{finished} of {total} lessons complete")


def render_runs() -> None:
    """The learner's training runs, drawn after the page so that runs the page already polls in a live panel of
    its own are left out. With none left to show, nothing polls: an idle sidebar costs the browser nothing."""
    me = session.learner()
    if any(not run_view.is_polled_by_page(run) for run in run_view.active_runs(me.id)):
        with st.sidebar:
            _run_status(me.id)
