"""A lesson page: one card at a time ("3 / 8"), then the quiz, then a completion screen.

The learner's position is stored in the progress store on every move, so leaving, reloading or restarting the
server brings them back to the same card. Stages: 0..n-1 are cards, n is the quiz (if any), then completion.
"""

from __future__ import annotations

import streamlit as st

from course.grading import score
from course.loader import LessonEntry
from course.schema import PIPELINE_STAGES, Card, Lesson
from ui import page_links, session
from ui.problems import render_problems
from ui.quiz import render_quiz
from ui.widgets import render_widget


def _stages(entry: LessonEntry) -> tuple[int, int | None, int]:
    """(number of cards, index of the quiz stage or None, index of the completion stage)."""
    n = len(entry.lesson.cards)
    has_quiz = entry.lesson.quiz is not None
    return n, (n if has_quiz else None), (n + 1 if has_quiz else n)


def _go(lesson_id: str, stage: int) -> None:
    session.store().set_card(session.learner().id, lesson_id, stage)


def _step(lesson_id: str, delta: int, last: int) -> None:
    """Move relative to where the learner is *now* (read at click time), so a quick second click, landing before
    the page finished drawing the new card, still moves one card further instead of repeating the old move."""
    me = session.learner()
    here = session.store().card(me.id, lesson_id)
    session.store().set_card(me.id, lesson_id, max(0, min(last, here + delta)))


def _finish(lesson_id: str, stage: int) -> None:
    me = session.learner()
    session.store().mark_complete(me.id, lesson_id)
    session.store().set_card(me.id, lesson_id, stage)
    st.session_state[f"lesson-{lesson_id}-celebrate"] = True


def pipeline_strip(stages: list[str]) -> str:
    """The "you are here" line: the four stages in order, this lesson's as blue badges, the rest in grey text.

    >>> pipeline_strip(["extract"])
    ':gray[You are here:] :blue-badge[**Extract**] :gray[→ Transform → Load → Retrieve]'
    >>> pipeline_strip(["transform", "load"])
    ':gray[You are here: Extract →] :blue-badge[**Transform**] :gray[→] :blue-badge[**Load**] :gray[→ Retrieve]'
    """
    pieces: list[tuple[bool, str]] = [(False, "You are here:")]  # (lit, text)
    for i, stage in enumerate(PIPELINE_STAGES):
        if i:
            pieces.append((False, "→"))
        pieces.append((stage in stages, stage.capitalize()))
    runs: list[tuple[bool, str]] = []
    for lit, text in pieces:  # neighbouring grey words become one grey run
        if runs and not lit and not runs[-1][0]:
            runs[-1] = (False, f"{runs[-1][1]} {text}")
        else:
            runs.append((lit, text))
    return " ".join(f":blue-badge[**{t}**]" if lit else f":gray[{t}]" for lit, t in runs)


def render_lesson(lesson_id: str) -> None:
    entry = session.course().entry(lesson_id)
    if entry is None:  # the file broke after navigation was built
        st.error("This lesson can no longer be loaded. Go back to Home to see what is wrong.")
        return
    lesson = entry.lesson
    n_cards, quiz_stage, done_stage = _stages(entry)
    me = session.learner()
    stage = min(session.store().card(me.id, lesson.id), done_stage)

    # The number is the lesson's place in the syllabus; not all ten exist yet, so no "of N".
    st.caption(f"Lesson {lesson.number} · ⏱️ {lesson.minutes} min")
    st.title(lesson.title)
    if lesson.stages:
        st.markdown(pipeline_strip(lesson.stages), help="The pipeline the course follows: Extract → Transform → "
                   "Load → Retrieve (lesson 1). The lit stage is the one this lesson works on.")

    if stage < n_cards:
        st.progress((stage + 1) / (n_cards + (1 if quiz_stage is not None else 0)), text=f"Card {stage + 1} / {n_cards}")
        _render_card(lesson, lesson.cards[stage], stage)
        _card_nav(lesson, stage, n_cards, quiz_stage, done_stage)
    elif stage == quiz_stage:
        st.progress(1.0, text="Quiz")
        _render_quiz_stage(entry, stage, done_stage)
    else:
        _render_completion(entry)


def _render_card(lesson: Lesson, card: Card, stage: int) -> None:
    with st.container(border=True, key=f"card-{lesson.id}-{card.id}"):
        st.header(f"{card.icon} {card.title}".strip(), anchor=False)
        st.markdown(card.body)
        reveal = True
        if card.widget is not None:
            shown = f"lesson-{lesson.id}-{card.id}-revealed"
            if card.widget.reveal and not st.session_state.get(shown):
                # the card asked for a guess: nothing that answers it is drawn until the learner asks
                st.button(card.widget.reveal, key=f"lesson-{lesson.id}-{card.id}-reveal", icon=":material/visibility:",
                          type="primary", on_click=st.session_state.__setitem__, args=(shown, True))
                reveal = False
            else:
                reveal = render_widget(card.widget.name, card.widget.params, key=f"{lesson.id}-{card.id}")
        if card.after and reveal:
            st.markdown(card.after)


def _card_nav(lesson: Lesson, stage: int, n_cards: int, quiz_stage: int | None, done_stage: int) -> None:
    left, _, right = st.columns([1, 2, 1])
    with left:
        # No arrow icons: the Left/Right shortcut hint Streamlit draws on these buttons is already an arrow.
        st.button("Previous", key=f"lesson-{lesson.id}-prev", disabled=stage == 0,
                  on_click=_step, args=(lesson.id, -1, n_cards - 1), shortcut="Left", width="stretch")
    with right:
        if stage < n_cards - 1:
            st.button("Next", key=f"lesson-{lesson.id}-next", type="primary", on_click=_step, args=(lesson.id, 1, n_cards - 1), shortcut="Right", width="stretch")
        elif quiz_stage is not None:
            st.button("Take the quiz", key=f"lesson-{lesson.id}-to-quiz", icon=":material/quiz:", type="primary",
                      on_click=_go, args=(lesson.id, quiz_stage), shortcut="Right", width="stretch")
        else:
            st.button("Finish lesson", key=f"lesson-{lesson.id}-finish", icon=":material/flag:", type="primary",
                      on_click=_finish, args=(lesson.id, done_stage), width="stretch")


def _render_quiz_stage(entry: LessonEntry, stage: int, done_stage: int) -> None:
    lesson = entry.lesson
    if entry.quiz is None:
        render_problems("The quiz for this lesson could not be loaded.", entry.quiz_problems)
        quiz_score = None
    else:
        quiz_score = render_quiz(entry.quiz, lesson.id)
    left, mid, right = st.columns([1, 2, 1])
    with left:
        st.button("Back to the cards", key=f"lesson-{lesson.id}-quiz-back", icon=":material/arrow_back:",
                  on_click=_go, args=(lesson.id, stage - 1), width="stretch")
    ready = quiz_score is None or quiz_score.done
    with right:
        st.button("Finish lesson", key=f"lesson-{lesson.id}-finish", icon=":material/flag:", type="primary",
                  disabled=not ready, on_click=_finish, args=(lesson.id, done_stage), width="stretch")
    if not ready:
        with mid:
            st.caption(f"Answer every question to finish ({quiz_score.answered} of {quiz_score.total} done).")


def _render_completion(entry: LessonEntry) -> None:
    lesson = entry.lesson
    me = session.learner()
    if st.session_state.pop(f"lesson-{lesson.id}-celebrate", False):
        st.balloons()
    with st.container(border=True, key=f"lesson-{lesson.id}-complete"):
        st.header("🎉 Lesson complete!", anchor=False)
        if entry.quiz is not None:
            s = score(entry.quiz, session.store().quiz_records(me.id, entry.quiz.id))
            a, b, c = st.columns(3)
            a.metric("Right on the first try", f"{s.first_try} / {s.graded}")
            b.metric("Right after retries", f"{s.best} / {s.graded}")
            c.metric("Questions answered", f"{s.answered} / {s.total}")
        st.markdown("**What you learned**")
        for objective in lesson.objectives:
            st.markdown(f"- ✅ {objective}")
    nxt = session.course().next_lesson(lesson.id)
    # Two buttons of one kind side by side, the next lesson's full title on the wider one (a page link in a narrow
    # column cut it mid-word and sat lower than the button beside it).
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left:
        st.button("Review the cards", key=f"lesson-{lesson.id}-review", icon=":material/replay:",
                  on_click=_go, args=(lesson.id, 0), width="stretch")
    with right:
        page = page_links.page_for(nxt.id) if nxt is not None else None
        label = f"Next: {nxt.number}. {nxt.title}" if page is not None else "Back to the course map"
        if st.button(label, key=f"lesson-{lesson.id}-onward", type="primary", width="stretch",
                     icon=":material/arrow_forward:" if page is not None else ":material/home:"):
            st.switch_page(page if page is not None else page_links.page_for("home"))
