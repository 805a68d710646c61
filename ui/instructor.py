"""The instructor's pages: the roster, question by question, the reflections, and the class's runs.

Registered only for a signed-in instructor (ui/navigation.py, ui/auth.py); each view checks again before it draws,
so a page that is somehow reached by anyone else shows nothing of the class. The tables come from
`course.class_report` (the roster, questions, reflections) and `ui.class_runs` (the runs); each is offered as a CSV
download of exactly what is on screen. Learners' names, answers and reflections are shown as text, never as
Markdown or HTML.
"""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from course import class_report
from ui import auth, class_runs, learner_data, private_files, session
from ui.tables import csv_text, table_with_csv
from ui.text import escape_md


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%d %b %Y, %H:%M") if at else "never"


def _roster() -> None:
    store, course = session.store(), session.course()
    members = [m for m in store.members() if not settings_instructor(m.email)]
    rows = class_report.roster(course, members, store.all_positions(), store.all_completions(), store.all_answers())
    st.title("Class roster")
    st.caption(f"{len(rows)} learners, most recently active first. Instructors are not listed.")
    if rows:
        done = sum(1 for r in rows if r.current == class_report.ALL_DONE)
        active = sum(1 for r in rows if r.last_active and dt.datetime.now().timestamp() - r.last_active < 3600)
        a, b, c = st.columns(3)
        a.metric("Learners", len(rows))
        b.metric("Active in the last hour", active)
        c.metric("Finished the course", done)
    lessons = max((r.of for r in rows), default=1)
    table_with_csv([{"Learner": r.name, "Email": r.email, "Lessons complete": r.completed, "Current lesson": r.current,
                     "Last active": _when(r.last_active)} for r in rows], "roster", "roster",
                   **{"Lessons complete": st.column_config.ProgressColumn(
                       "Lessons complete", min_value=0, max_value=lessons, format=f"%d of {lessons}")})
    if rows:
        with st.expander("A learner leaves: export or delete their data"):
            learner_data.instructor_panel(members)


def settings_instructor(email: str | None) -> bool:
    """Whether a roster member is one of the instructors named by email (they are left out of the roster)."""
    return bool(email) and auth.settings().is_instructor({"email": email})


def _questions() -> None:
    store, course = session.store(), session.course()
    rows = class_report.questions(course, store.all_answers())
    st.title("Question by question")
    st.caption("Every graded question the class has answered, hardest first: the share right on the first try, the "
               "median number of tries, and the wrong answers given most often, as the learners saw them.")
    by_lesson = class_report.first_try_by_lesson(rows)
    if by_lesson:
        fig = go.Figure(go.Bar(x=[f"Lesson {n}" for n, _ in by_lesson], y=[share * 100 for _, share in by_lesson],
                               text=[f"{share:.0%}" for _, share in by_lesson], textposition="outside",
                               hovertemplate="%{x}: %{y:.0f}% right first try<extra></extra>"))
        fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(range=[0, 110], title="%"),
                          title="Right on the first try, by lesson (mean over its questions)")
        st.plotly_chart(fig, key="questions-chart", config={"displayModeBar": False})
    table_with_csv([{"Lesson": r.lesson, "Question": r.prompt, "Right first try": round(r.first_try_right * 100),
                     "Most common wrong answers": " | ".join(f"{text} (x{n})" for text, n in r.wrong_answers) or "none",
                     "Median tries": r.median_attempts, "Learners": r.learners, "Kind": r.kind.replace("_", " ")}
                    for r in rows], "questions", "questions",
                   **{"Right first try": st.column_config.ProgressColumn("Right first try", min_value=0, max_value=100,
                                                                         format="%d%%", width="small"),
                      "Question": st.column_config.TextColumn("Question", width="medium"),
                      "Most common wrong answers": st.column_config.TextColumn("Most common wrong answers",
                                                                               width="medium"),
                      "Lesson": st.column_config.NumberColumn("Lesson", width="small"),
                      "Learners": st.column_config.NumberColumn("Learners", width="small"),
                      "Median tries": st.column_config.NumberColumn("Median tries", width="small")})


def _reflections() -> None:
    store, course = session.store(), session.course()
    rows = class_report.reflections(course, store.members(), store.all_answers())
    st.title("Reflections")
    st.caption("Each learner's latest answer to each reflection question, by lesson.")
    if not rows:
        st.info("No reflections yet.")
        return
    prompts = list(dict.fromkeys((r.lesson, r.prompt) for r in rows))
    choice = st.selectbox("Question", range(len(prompts)), key="reflections-question",
                          format_func=lambda i: f"Lesson {prompts[i][0]}: {prompts[i][1]}")
    chosen = [r for r in rows if (r.lesson, r.prompt) == prompts[choice]]
    st.caption(f"{len(chosen)} answers")
    for r in chosen:
        with st.container(border=True):
            st.markdown(f"**{escape_md(r.name)}** · {_when(r.at)}")
            st.text(r.text)  # the learner's words, verbatim
    private_files.download_button("Download all reflections as CSV", csv_text(
        [{"Lesson": r.lesson, "Question": r.prompt, "Learner": r.name, "Answer": r.text, "When": _when(r.at)}
         for r in rows]), file_name="reflections.csv", mime="text/csv", icon=":material/download:",
        key="reflections-csv")


VIEWS = {"roster": _roster, "questions": _questions, "reflections": _reflections, "runs": class_runs.render}


def render(view: str) -> None:
    """One instructor view; nothing of the class for anyone who is not an instructor."""
    if not auth.is_instructor():
        st.error("This page is for the class's instructors.")
        return
    VIEWS[view]()
