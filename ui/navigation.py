"""Build the course's pages: Home, one page per lesson (in number order), My progress.

`app.py` calls `build()` and hands the result to `st.navigation`. Lesson pages are made from the lesson files,
so adding a lesson is adding YAML. Pages find another page through `ui.page_links.page_for(key)` to link to it.

Only Home's module is imported here. A lesson page and My progress need torch, the engine and pandas: their
modules are imported by the warm-up thread (ui/warmup.py), and their pages wait for it before looking them up,
so a newcomer's Home is drawn without those seconds of imports.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import auth, page_links, session, warmup
from ui.home import render_home


def _engine_loaded() -> None:
    """Wait for the warm-up thread's imports (only the first pages after the server starts ever wait)."""
    if not warmup.done():
        with st.spinner("Loading the live engine: only the first page after the course starts waits for this."):
            warmup.wait()


def _lesson_runner(lesson_id: str) -> Callable[[], None]:
    def run() -> None:
        _engine_loaded()
        from ui.lesson_page import render_lesson  # imported by the warm-up thread: only looked up here

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


def _progress() -> None:
    _engine_loaded()
    from ui.progress_page import render_progress  # imported by the warm-up thread: only looked up here

    render_progress()


def _home_address() -> None:
    """`/home` (a bookmark, or a learner typing the page's name) goes to Home, which Streamlit serves at `/`."""
    st.switch_page(page_links.page_for("home"))


def _instructor_runner(view: str) -> Callable[[], None]:
    def run() -> None:
        _engine_loaded()
        from ui import instructor  # imported by the warm-up thread: only looked up here

        instructor.render(view)

    run.__name__ = f"instructor_{view}"
    return run


INSTRUCTOR_PAGES = (  # (view, title, icon, address): registered only for an instructor (ui/auth.py)
    ("roster", "Class roster", ":material/groups:", "class-roster"),
    ("questions", "Question by question", ":material/quiz:", "class-questions"),
    ("reflections", "Reflections", ":material/edit_note:", "class-reflections"),
    ("runs", "The class's runs", ":material/model_training:", "class-runs"),
)


def build() -> dict[str, list[st.Page]] | list[st.Page]:
    if auth.class_mode() and not auth.signed_in():  # class mode: nothing but the sign-in page before sign-in
        return [st.Page(auth.render_sign_in, title="Sign in", icon=":material/login:", url_path="", default=True)]
    course = session.course()
    done = session.store().completed(session.learner().id)
    pages: dict[str, st.Page] = {}
    # Home is the default page, served at the root; a default page's own url_path would answer "Page not found"
    # (Streamlit 1.67), so /home is a hidden page that switches there.
    pages["home"] = st.Page(render_home, title="Home", icon=":material/school:", url_path="", default=True)
    pages["home-address"] = st.Page(_home_address, title="Home", url_path="home", visibility="hidden")
    pages["progress"] = st.Page(_progress, title="My progress", icon=":material/insights:", url_path="progress")
    lessons = []
    for lesson in course.lessons:
        icon = ":material/check_circle:" if lesson.id in done else ":material/radio_button_unchecked:"
        page = st.Page(
            _lesson_runner(lesson.id), title=nav_title(lesson.number, lesson.title), icon=icon,
            url_path=f"lesson-{lesson.number}"
        )
        pages[lesson.id] = page
        lessons.append(page)
    sections = {"Course": [pages["home"], pages["progress"], pages["home-address"]], "Lessons": lessons}
    if auth.is_instructor():
        teaching = []
        for view, title, icon, address in INSTRUCTOR_PAGES:
            pages[f"instructor-{view}"] = st.Page(_instructor_runner(view), title=title, icon=icon, url_path=address)
            teaching.append(pages[f"instructor-{view}"])
        sections["Instructor"] = teaching
    page_links.register(pages)
    return sections

