"""Build the course's pages: Home, one page per lesson (in number order), My progress.

`app.py` calls `build()` and hands the result to `st.navigation`. Lesson pages are made from the lesson files,
so adding a lesson is adding YAML. Other modules find a lesson's page through `page_for(lesson_id)` to link to it.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import session

_PAGES: dict[str, st.Page] = {}


def _lesson_runner(lesson_id: str) -> Callable[[], None]:
    def run() -> None:
        from ui.lesson_page import render_lesson

        render_lesson(lesson_id)

    run.__name__ = f"lesson_{lesson_id.replace('-', '_')}"  # Streamlit identifies callable pages by name
    return run


def build() -> dict[str, list[st.Page]]:
    from ui.home import render_home
    from ui.progress_page import render_progress

    course = session.course()
    done = session.store().completed(session.learner().id)
    _PAGES.clear()
    _PAGES["home"] = st.Page(render_home, title="Home", icon=":material/school:", url_path="home", default=True)
    _PAGES["progress"] = st.Page(render_progress, title="My progress", icon=":material/insights:", url_path="progress")
    lessons = []
    for lesson in course.lessons:
        icon = ":material/check_circle:" if lesson.id in done else ":material/radio_button_unchecked:"
        page = st.Page(
            _lesson_runner(lesson.id), title=f"{lesson.number}. {lesson.title}", icon=icon, url_path=f"lesson-{lesson.number}"
        )
        _PAGES[lesson.id] = page
        lessons.append(page)
    return {"Course": [_PAGES["home"], _PAGES["progress"]], "Lessons": lessons}


def page_for(key: str) -> st.Page | None:
    """The page of a lesson id, or 'home' / 'progress'."""
    return _PAGES.get(key)
