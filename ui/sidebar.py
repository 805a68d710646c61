"""The sidebar: who is learning (pick or create a profile), the course's overall progress, and training runs the
current page does not show itself.

The profile and progress part is on every page, Home included, so it needs only the course and the progress
store. The runs part (ui/sidebar_runs.py) needs the engine: it is drawn once the warm-up thread (ui/warmup.py)
has loaded it. Before that, no run can be training in this server process (every page that starts one waits
for the warm-up first), so there is nothing to list.
"""

from __future__ import annotations

import streamlit as st

from course.progress import Learner
from ui import auth, session, warmup
from ui.text import escape_md


def _on_pick() -> None:
    if auth.class_mode():  # no picker is drawn in class mode; a forged widget message changes nothing
        return
    chosen = st.session_state["sidebar-learner"]
    found = next((lr for lr in session.store().learners() if lr.id == chosen), None)
    if found:
        session.switch_learner(found)


def _on_create() -> None:
    if auth.class_mode():
        return
    name = st.session_state.get("sidebar-new-name", "")
    try:
        new = session.store().get_or_create_learner(name)
    except ValueError as err:
        st.session_state["sidebar-error"] = str(err)
        return
    st.session_state.pop("sidebar-error", None)
    st.session_state["sidebar-new-name"] = ""
    session.switch_learner(new)


def render() -> None:
    """Who is learning and the course's overall progress. Drawn before the page (see render_runs for after)."""
    if auth.class_mode() and not auth.signed_in():
        return  # the sign-in page alone
    if warmup.done():  # before it, no page of this process can have polled a run
        from ui import run_view  # loaded by the warm-up thread: only looked up here

        run_view.new_page_run()
    me = session.learner()
    with st.sidebar:
        if auth.class_mode():
            _signed_in_as(me)
        else:
            _profile_picker(me)
        course = session.course()
        done = session.store().completed(me.id)
        total = len(course.lessons)
        finished = sum(1 for lesson in course.lessons if lesson.id in done)
        st.progress(finished / total if total else 0.0, text=f"{finished} of {total} lessons complete")


def _signed_in_as(me: Learner) -> None:
    """Class mode: who is signed in, and the way out. No picker: identity comes from the sign-in alone."""
    email = auth.claims().get("email")
    role = "Instructor" if auth.is_instructor() else "Signed in as"
    line = f"**{role}:** {escape_md(me.name)}"
    if isinstance(email, str) and email != me.name:
        line += f"  \n{escape_md(email)}"
    st.markdown(line)
    st.button("Log out", icon=":material/logout:", key="auth-logout", on_click=st.logout, width="stretch")


def _profile_picker(me: Learner) -> None:
    """Single-learner mode: pick a local profile, or make one."""
    learners = session.store().learners()
    # The selectbox's own state must follow the current learner (it changes from the "New profile" form too).
    st.session_state["sidebar-learner"] = me.id
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


def render_runs() -> None:
    """The learner's training runs, drawn after the page so that runs the page already polls in a live panel of
    its own are left out (ui/sidebar_runs.py)."""
    if auth.class_mode() and not auth.signed_in():
        return
    if not warmup.done():
        return  # no run trains in this process before the warm-up: every page that starts one waits for it
    from ui import sidebar_runs  # loaded by the warm-up thread: only looked up here

    sidebar_runs.render(session.learner().id)
