"""What every page shares: the progress store, the loaded course, and who the current learner is.

Streamlit forgets widget state on page switches and everything on a reload, so the learner's identity lives in a
plain session key (not owned by any widget) and falls back to the most recently active learner in the store.
"""

from __future__ import annotations

import streamlit as st

import paths
from course.loader import Course, load_course
from course.progress import Learner, ProgressStore
from ui import auth

LEARNER_KEY = "learner_id"  # a plain session key: no widget owns it, so page switches keep it
SIGNED_IN_KEY = "signed_in_learner"  # class mode: (subject, learner id) once this session has signed in
DEFAULT_NAME = "Guest"


@st.cache_resource(show_spinner=False)
def _open_store(url: str) -> ProgressStore:
    return ProgressStore(url)


def store() -> ProgressStore:
    """One store per database for the whole server (`paths.database_url()`: LLM_COURSE_DATABASE_URL, else the
    SQLite file LLM_COURSE_DB)."""
    return _open_store(paths.database_url())


def course() -> Course:
    """Loaded once and re-read only when a lesson or quiz file changes (the loader caches by mtime).

    `LLM_COURSE_CONTENT` may point at another folder holding `lessons/` and `quizzes/` (an instructor's draft).
    """
    return load_course(*paths.content_dirs())


def learner() -> Learner:
    """The learner this session serves. In class mode (ui/auth.py) the signed-in person, from the sign-in alone:
    nothing a browser sends can name another learner (st.stop for a session that has not signed in, which only
    ever sees the sign-in page). Otherwise the session's profile, falling back to the most recently active one."""
    s = store()
    if auth.class_mode():
        if not auth.signed_in():
            st.stop()
        c = auth.claims()
        subject = str(c["sub"])
        known = st.session_state.get(SIGNED_IN_KEY)  # (subject, learner id), set at this session's sign-in
        if known is not None and known[0] == subject and st.session_state.get(LEARNER_KEY) == known[1]:
            me = s.learner(known[1])  # a read on every rerun, not the sign-in's write
            if me is not None:
                return me
        me = s.signed_in_learner(subject, c.get("email"), c.get("name"))
        if st.session_state.get(LEARNER_KEY) != me.id:
            switch_learner(me)
        st.session_state[SIGNED_IN_KEY] = (subject, me.id)
        return me
    current = s.learner(st.session_state[LEARNER_KEY]) if LEARNER_KEY in st.session_state else None
    if current is None:
        current = s.last_learner() or s.get_or_create_learner(DEFAULT_NAME)
        switch_learner(current)
    return current


KEPT_ON_SWITCH = ("harness_widget", "harness_params")  # the one-widget test page's own setup (tests/ui)


def switch_learner(new: Learner) -> None:
    """Make `new` the session's learner. Switching from another learner forgets every other session key first:
    widget state outlives a rerun, so the next learner would otherwise see the last one's half-typed reflection,
    pasted text, prompts and quiz arrangements, and could save them as their own. The page then starts as a fresh
    tab would for `new`, from what the store holds for them."""
    old = st.session_state.get(LEARNER_KEY)
    if old is not None and old != new.id:
        for key in [k for k in st.session_state if k != LEARNER_KEY and k not in KEPT_ON_SWITCH]:
            del st.session_state[key]
    st.session_state[LEARNER_KEY] = new.id
    store().touch_learner(new.id)
