"""What every page shares: the progress store, the loaded course, and who the current learner is.

Streamlit forgets widget state on page switches and everything on a reload, so the learner's identity lives in a
plain session key (not owned by any widget) and falls back to the most recently active learner in the store.
"""

from __future__ import annotations

import streamlit as st

from course.loader import Course, load_course
from course.progress import Learner, ProgressStore

LEARNER_KEY = "learner_id"  # a plain session key: no widget owns it, so page switches keep it
DEFAULT_NAME = "Guest"


@st.cache_resource
def store() -> ProgressStore:
    return ProgressStore()


def course() -> Course:
    """Loaded once and re-read only when a lesson or quiz file changes (the loader caches by mtime)."""
    return load_course()


def learner() -> Learner:
    s = store()
    current = s.learner(st.session_state[LEARNER_KEY]) if LEARNER_KEY in st.session_state else None
    if current is None:
        current = s.last_learner() or s.get_or_create_learner(DEFAULT_NAME)
        switch_learner(current)
    return current


def switch_learner(new: Learner) -> None:
    st.session_state[LEARNER_KEY] = new.id
    store().touch_learner(new.id)
