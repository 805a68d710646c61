"""Where each page lives, so a page can link to another: `page_for("home")`, `page_for(lesson_id)`.

Filled by ui/navigation.py when it builds the pages; read by the pages that link onwards (the course map, the
completion screen). Kept apart from navigation so pages need not import the module that imports them.
"""

from __future__ import annotations

import streamlit as st

_PAGES: dict[str, st.Page] = {}


def register(pages: dict[str, st.Page]) -> None:
    """The pages of this script run, by key: 'home', 'progress' and each lesson id."""
    _PAGES.clear()
    _PAGES.update(pages)


def page_for(key: str) -> st.Page | None:
    """The page of a lesson id, or 'home' / 'progress'."""
    return _PAGES.get(key)
