"""My progress: status and scores per lesson, reflections, export to JSON, and reset with confirmation."""

from __future__ import annotations

import datetime as dt
import json

import streamlit as st

from course.grading import score
from course.schema import Reflection
from ui import learner_data, private_files, session
from ui.text import escape_md


def _confirm_reset() -> None:
    me = session.learner()
    session.store().reset(me.id)
    for key in [k for k in st.session_state if str(k).startswith(("quiz-", "lesson-"))]:
        del st.session_state[key]
    st.session_state["progress-reset-done"] = True


def render_progress() -> None:
    me = session.learner()
    store = session.store()
    course = session.course()
    done = store.completed(me.id)
    positions = store.positions(me.id)
    if "learner-data-deleted" in st.session_state:
        st.success(f"Deleted everything the course held about you: {st.session_state.pop('learner-data-deleted')}.")
    st.title(f"📈 My progress · {escape_md(me.name)}")  # learner text: shown as typed, never as Markdown

    rows = []
    for entry in course.entries:
        if not entry.ok:
            continue
        lesson = entry.lesson
        status = "✅ Completed" if lesson.id in done else ("🟠 In progress" if lesson.id in positions else "⚪ Not started")
        first = best = "–"
        if entry.quiz is not None:
            s = score(entry.quiz, store.quiz_records(me.id, entry.quiz.id))
            if s.answered:
                first, best = f"{s.first_try} / {s.graded}", f"{s.best} / {s.graded}"
        rows.append({"Lesson": f"{lesson.number}. {lesson.title}", "Status": status,
                     "Right first try": first, "Best": best})
    st.dataframe(rows, hide_index=True, width="stretch")

    st.header("Your reflections", anchor=False)
    any_reflection = False
    for entry in course.entries:
        if entry.quiz is None:
            continue
        records = store.quiz_records(me.id, entry.quiz.id)
        for q in entry.quiz.questions:
            rec = records.get(q.id)
            if isinstance(q, Reflection) and rec and isinstance(rec.last.response, str):
                any_reflection = True
                with st.container(border=True):
                    st.caption(f"Lesson {entry.lesson.number} · {dt.datetime.fromtimestamp(rec.last.created_at):%d %b %Y, %H:%M}")
                    st.markdown(f"**{q.prompt}**")
                    st.text(rec.last.response)  # learner text, shown verbatim
    if not any_reflection:
        st.caption("Reflections you write in the quizzes appear here.")

    st.header("Keep or clear", anchor=False)
    left, right = st.columns(2)
    with left:
        learner_id = me.id
        private_files.download_button(  # made on the press, so the file holds what is true then
            "Download my progress (JSON)",
            data=lambda: json.dumps(store.export(learner_id), indent=2, ensure_ascii=False),
            file_name=f"llm-course-progress-{me.name}.json",
            mime="application/json",
            icon=":material/download:",
            key="progress-export",
            on_click="ignore",
        )
    with right:
        with st.popover("Reset my progress", icon=":material/delete_forever:"):
            st.markdown(f"This deletes **all** of {escape_md(me.name)}'s positions, answers, reflections and completions. "
                        "It cannot be undone; download your progress first if you want a copy.")
            st.button("Yes, reset everything", key="progress-reset-confirm", type="primary", on_click=_confirm_reset)
        learner_data.learner_panel(me.id, me.name)
    if st.session_state.pop("progress-reset-done", False):
        st.success("Your progress was reset.")
