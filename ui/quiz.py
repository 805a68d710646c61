"""Quiz widgets for every question kind, with immediate feedback and retries.

Each answer is written to the progress store the moment the learner presses Check, and the feedback shown is
always re-graded from the stored answer, so it is still there after a page switch, a reload or a server restart.
Choices are shuffled per learner (seeded by learner and question) but stored by option id, never by position.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from course.grading import Feedback, QuizScore, grade, parse_number, score, shuffled
from course.progress import QuestionRecord
from course.schema import (
    FillBlanks,
    MultipleSelect,
    Numeric,
    Ordering,
    Question,
    Quiz,
    Reflection,
    SingleChoice,
)
from ui import session
from ui.facts import learner_facts
from ui.text import escape_md

KIND_LABEL = {
    "single_choice": "Choose one",
    "multiple_select": "Choose all that apply",
    "fill_blanks": "Fill in the blanks",
    "ordering": "Put in order",
    "numeric": "Estimate a number",
    "reflection": "Reflect",
}


def _key(quiz: Quiz, q: Question) -> str:
    return f"quiz-{quiz.id}-{q.id}"


def render_quiz(quiz: Quiz, lesson_id: str) -> QuizScore:
    me = session.learner()
    records = session.store().quiz_records(me.id, quiz.id)
    facts = learner_facts(me.id)
    st.header(f"📝 {quiz.title}", anchor=False)
    s = score(quiz, records)
    st.caption(
        f"{s.answered} of {s.total} answered · {s.first_try} of {s.graded} right on the first try · "
        "every answer shows why, and you can try again as often as you like."
    )
    for number, q in enumerate(quiz.questions, start=1):
        with st.container(border=True, key=f"qbox-{quiz.id}-{q.id}"):
            st.markdown(f"**Question {number} of {len(quiz.questions)}** · {KIND_LABEL[q.type]}")
            st.markdown(q.prompt)
            record = records.get(q.id)
            _RENDER[q.type](quiz, q, record, me.id, facts)
            _show_feedback(quiz, q, record, facts)
    return score(quiz, records)


# ------------------------------------------------------------------ checking and feedback


def _submit(quiz_id: str, q: Question, response: Any, learner_id: int, facts: dict[str, float]) -> None:
    """Grade and store one answer (called from a button callback, before the page reruns)."""
    warn_key = f"quiz-{quiz_id}-{q.id}-warn"
    st.session_state.pop(warn_key, None)
    if response is None:
        st.session_state[warn_key] = "Pick or type an answer first."
        return
    fb = grade(q, response, facts)
    if isinstance(q, Reflection) and fb.correct is False:
        st.session_state[warn_key] = fb.headline  # too short: keep the text in the box, store nothing yet
        return
    if isinstance(q, Numeric) and fb.correct is None:
        st.session_state[warn_key] = fb.headline
        return
    session.store().record_answer(learner_id, quiz_id, q.id, response, fb.correct)


def _check_button(quiz: Quiz, q: Question, record: QuestionRecord | None, learner_id: int, facts, read) -> None:
    label = "Save reflection" if isinstance(q, Reflection) else ("Check again" if record else "Check answer")
    st.button(
        label,
        key=f"{_key(quiz, q)}-check",
        icon=":material/check:",
        on_click=lambda: _submit(quiz.id, q, read(), learner_id, facts),
    )


def _show_feedback(quiz: Quiz, q: Question, record: QuestionRecord | None, facts: dict[str, float]) -> None:
    warn = st.session_state.get(f"quiz-{quiz.id}-{q.id}-warn")
    if warn:
        st.warning(warn, icon=":material/info:")
    if record is None or record.last is None:
        return
    try:
        fb = grade(q, record.last.response, facts)
    except ValueError:  # content changed since the answer was stored (an option was removed): ask again
        st.info("This question changed since you answered it. Please answer it again.")
        return
    _draw(fb, record, q)


def _draw(fb: Feedback, record: QuestionRecord, q: Question) -> None:
    if fb.correct is True:
        st.success(fb.headline, icon=":material/check_circle:")
    elif fb.correct is False:
        st.error(fb.headline, icon=":material/cancel:")
    else:
        st.info(fb.headline, icon=":material/bookmark:")
    for line in fb.details:
        st.markdown(escape_md(line))
    for note in fb.notes:
        _note(note)
    if fb.correct is False:
        with st.expander("Show the answer and why", icon=":material/visibility:"):
            for line in fb.reveal:
                st.markdown(escape_md(line))
            for note in fb.reveal_notes:
                _note(note)
            if fb.explanation:
                st.markdown(f"💡 {fb.explanation}")
    elif fb.explanation:
        st.markdown(f"💡 {fb.explanation}")
    if not isinstance(q, Reflection):
        first = "yes" if record.first_correct else "no"
        st.caption(f"Attempts: {record.attempts} · right on the first try: {first}")


def _note(note) -> None:
    mark = "✅" if note.correct else "❌"
    st.markdown(f"{mark} **{note.text}**: {note.explanation}")


# ------------------------------------------------------------------ one renderer per kind


def _single(quiz: Quiz, q: SingleChoice, record, learner_id: int, facts) -> None:
    key = _key(quiz, q)
    order = [o.id for o in shuffled(q.options, learner_id, quiz.id, q.id)]
    text = {o.id: o.text for o in q.options}
    last = record.last.response if record else None
    st.radio("Your answer", order, index=order.index(last) if last in order else None, format_func=text.get,
             key=key, label_visibility="collapsed")
    _check_button(quiz, q, record, learner_id, facts, lambda: st.session_state.get(key))


def _multiple(quiz: Quiz, q: MultipleSelect, record, learner_id: int, facts) -> None:
    key = _key(quiz, q)
    last = set(record.last.response) if record else set()
    options = shuffled(q.options, learner_id, quiz.id, q.id)
    for o in options:
        st.checkbox(o.text, value=o.id in last, key=f"{key}-{o.id}")

    def read() -> list[str]:
        return [o.id for o in q.options if st.session_state.get(f"{key}-{o.id}")]

    _check_button(quiz, q, record, learner_id, facts, read)


def _blanks(quiz: Quiz, q: FillBlanks, record, learner_id: int, facts) -> None:
    key = _key(quiz, q)
    last = record.last.response if record else [None] * len(q.answers)
    picks = [st.session_state.get(f"{key}-{i}", last[i]) for i in range(len(q.answers))]
    parts = q.segments()
    sentence = escape_md(parts[0])
    for i, part in enumerate(parts[1:]):
        sentence += f"**[{escape_md(picks[i])}]**" if picks[i] else f"**[ {i + 1} ]**"
        sentence += escape_md(part)
    st.markdown(f"> {sentence}")
    bank = shuffled(q.bank, learner_id, quiz.id, q.id)
    for i in range(len(q.answers)):
        st.pills(f"Word for blank {i + 1}" if len(q.answers) > 1 else "Word bank", bank, default=last[i],
                 key=f"{key}-{i}")

    def read() -> list[str] | None:
        words = [st.session_state.get(f"{key}-{i}") for i in range(len(q.answers))]
        return None if any(w is None for w in words) else words

    _check_button(quiz, q, record, learner_id, facts, read)


def _ordering(quiz: Quiz, q: Ordering, record, learner_id: int, facts) -> None:
    key = _key(quiz, q)
    state_key = f"{key}-order"  # a plain key (no widget owns it), so it survives reruns
    if state_key not in st.session_state:
        start = record.last.response if record else [i.id for i in shuffled(q.items, learner_id, quiz.id, q.id)]
        st.session_state[state_key] = list(start)
    order: list[str] = st.session_state[state_key]
    text = {i.id: i.text for i in q.items}

    def move(pos: int, delta: int) -> None:
        o = st.session_state[state_key]
        o[pos], o[pos + delta] = o[pos + delta], o[pos]

    st.caption("Use the arrows to move each step up or down, then check.")
    for pos, item_id in enumerate(order):
        c_num, c_text, c_up, c_down = st.columns([0.06, 0.74, 0.1, 0.1], vertical_alignment="center")
        c_num.markdown(f"**{pos + 1}.**")
        c_text.markdown(text[item_id])
        c_up.button("", key=f"{key}-up-{item_id}", icon=":material/arrow_upward:", disabled=pos == 0,
                    on_click=move, args=(pos, -1), help="Move up")
        c_down.button("", key=f"{key}-down-{item_id}", icon=":material/arrow_downward:", disabled=pos == len(order) - 1,
                      on_click=move, args=(pos, 1), help="Move down")
    _check_button(quiz, q, record, learner_id, facts, lambda: list(st.session_state[state_key]))


_MISSING_FACT_HINT = {
    "run": "This question is about **your own training run**. Start a run on lesson 7's training card, let it "
           "finish, then come back.",
    "dedup": "This question is about **your own deduplication**. Open the dedup lab card in this lesson, set your "
             "threshold, then come back.",
    "corpus": "This question is about **the corpus you picked**. Pick one on this lesson's corpus card first.",
    "bpe": "This question is about **the tokenizer you trained**. Train it on this lesson's BPE card first.",
}


def _numeric(quiz: Quiz, q: Numeric, record, learner_id: int, facts) -> None:
    key = _key(quiz, q)
    if q.answer_from is not None and q.answer_from not in facts:
        st.info(_MISSING_FACT_HINT.get(q.answer_from.split(".")[0], "This question is about your own work in this "
                "lesson's live cards: do that first, then come back."), icon=":material/science:")
        return
    last = record.last.response if record else None
    label = f"Your answer ({q.unit})" if q.unit else "Your answer"
    st.text_input(label, value="" if last is None else f"{last:g}", key=key, placeholder="a number, e.g. 4.2")

    def read() -> float | None:
        return parse_number(st.session_state.get(key))

    _check_button(quiz, q, record, learner_id, facts, read)


def _reflection(quiz: Quiz, q: Reflection, record, learner_id: int, facts) -> None:
    key = _key(quiz, q)
    if q.hint:
        st.caption(q.hint)
    last = record.last.response if record else ""
    st.text_area("Your reflection", value=last, key=key, height=140, max_chars=4000,
                 placeholder=f"At least {q.min_chars} characters. There is no wrong answer.",
                 label_visibility="collapsed")

    def read() -> str | None:
        text = st.session_state.get(key) or ""
        return text if text.strip() else None

    _check_button(quiz, q, record, learner_id, facts, read)


_RENDER = {
    "single_choice": _single,
    "multiple_select": _multiple,
    "fill_blanks": _blanks,
    "ordering": _ordering,
    "numeric": _numeric,
    "reflection": _reflection,
}
