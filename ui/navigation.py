"""Build the course's pages: Home, one page per lesson (in number order), My progress.

`app.py` calls `build()` and hands the result to `st.navigation`. Lesson pages are made from the lesson files,
so adding a lesson is adding YAML. Pages find another page through `ui.page_links.page_for(key)` to link to it.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import page_links, session
from ui.home import render_home
from ui.lesson_page import render_lesson
from ui.progress_page import render_progress


def _lesson_runner(lesson_id: str) -> Callable[[], None]:
    def run() -> None:
        render_lesson(lesson_id)

    run.__name__ = f"lesson_{lesson_id.replace('-', '_')}"  # Streamlit identifies callable pages by name
    return run


def nav_title(number: int, title: str) -> str:
    """A lesson's name in the sidebar menu: its title up to the colon, so it fits the sidebar's width (the page
    itself shows the whole title).

    >>> nav_title(4, "Tokenization: from text to numbers"), nav_title(7, "The training loop")
    ('4. Tokenization', '7. The training loop')
    """
    return f"{number}. {title.split(':')[0].strip()}"


def build() -> dict[str, list[st.Page]]:
    course = session.course()
    done = session.store().completed(session.learner().id)
    pages: dict[str, st.Page] = {}
    pages["home"] = st.Page(render_home, title="Home", icon=":material/school:", url_path="home", default=True)
    pages["progress"] = st.Page(render_progress, title="My progress", icon=":material/insights:", url_path="progress")
    lessons = []
    for lesson in course.lessons:
        icon = ":material/check_circle:" if lesson.id in done else ":material/radio_button_unchecked:"
        page = st.Page(
            _lesson_runner(lesson.id), title=nav_title(lesson.number, lesson.title), icon=icon,
            url_path=f"lesson-{lesson.number}"
        )
        pages[lesson.id] = page
        lessons.append(page)
    page_links.register(pages)
    return {"Course": [pages["home"], pages["progress"]], "Lessons": lessons}

