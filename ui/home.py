"""Home: the course map. Every lesson with its number, time, status and score; overall progress; broken files.

Home is the first page a newcomer sees, so it draws from the course and the progress store alone and imports
nothing of the engine; once it is drawn it starts the warm-up thread (ui/warmup.py) that loads what the lessons
need, while the learner reads.
"""

from __future__ import annotations

import streamlit as st

from course.grading import score
from course.loader import LessonEntry
from ui import page_links, session, warmup
from ui.problems import render_problems
from ui.text import escape_md

PIPELINE = [
    ("📥", "Extract", "collect and clean text"),
    ("🔁", "Transform", "tokenize, embed, learn to predict the next token"),
    ("💾", "Load", "save the learned weights"),
    ("🔎", "Retrieve", "look things up at answer time"),
]


def _status(entry: LessonEntry, learner_id: int, done: set[str], positions: dict[str, int]) -> tuple[str, str, str]:
    """(badge text, badge colour, button label) for one lesson."""
    lesson = entry.lesson
    if lesson.id in done:
        label = "Completed"
        if entry.quiz is not None:
            s = score(entry.quiz, session.store().quiz_records(learner_id, entry.quiz.id))
            label = f"Completed · quiz {s.best}/{s.graded}"
        return label, "green", "Review"
    if lesson.id in positions:
        card = positions[lesson.id]
        where = f"card {card + 1} / {len(lesson.cards)}" if card < len(lesson.cards) else "at the quiz"
        return f"In progress · {where}", "orange", "Continue"
    return "Not started", "gray", "Start"


def render_home() -> None:
    me = session.learner()
    course = session.course()
    store = session.store()
    done = store.completed(me.id)
    positions = store.positions(me.id)

    st.title("🧠 How LLMs are trained, by training one")
    st.markdown(
        "Step through short cards, turn the knobs on a **real GPT** that trains right here on this machine, and "
        "check your understanding with quizzes that explain every answer. Your progress is saved as you go."
    )
    cols = st.columns(len(PIPELINE))
    for col, (icon, name, what) in zip(cols, PIPELINE, strict=True):
        with col.container(border=True):
            st.markdown(f"**{icon} {name}**")
            st.caption(what)

    lessons = course.lessons
    finished = sum(1 for lesson in lessons if lesson.id in done)
    minutes_left = sum(lesson.minutes for lesson in lessons if lesson.id not in done)
    st.subheader(f"Welcome, {escape_md(me.name)}", anchor=False)  # a name is learner text: shown as typed
    a, b, c = st.columns(3)
    a.metric("Lessons complete", f"{finished} / {len(lessons)}")
    b.metric("Time left", f"{minutes_left} min")
    graded = first = 0
    for entry in course.entries:
        if entry.quiz is not None:
            s = score(entry.quiz, store.quiz_records(me.id, entry.quiz.id))
            graded, first = graded + s.graded, first + s.first_try
    c.metric("Quiz answers right first try", f"{first} / {graded}")
    st.progress(finished / len(lessons) if lessons else 0.0, text="Overall progress")

    st.subheader("Lessons", anchor=False)
    grid = st.columns(2)
    for i, entry in enumerate(e for e in course.entries if e.ok):
        lesson = entry.lesson
        badge, colour, action = _status(entry, me.id, done, positions)
        with grid[i % 2].container(border=True, key=f"home-lesson-{lesson.id}"):
            st.caption(f"Lesson {lesson.number} · ⏱️ {lesson.minutes} min")
            st.markdown(f"#### {lesson.title}")
            st.badge(badge, color=colour)
            st.markdown(lesson.summary)
            page = page_links.page_for(lesson.id)
            if page is not None:
                st.page_link(page, label=f"{action} lesson {lesson.number}", icon=":material/play_arrow:")

    broken = [e for e in course.entries if not e.ok]
    if broken:
        st.subheader("Lessons that could not be loaded", anchor=False)
        for entry in broken:
            render_problems(f"{entry.file.name} has problems, so this lesson is hidden until it is fixed.", entry.problems)
    warmup.start()  # after the page is drawn: the lessons' imports load while the learner reads
