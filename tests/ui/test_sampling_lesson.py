"""Lesson 8 (sampling) as a page: the bench writes greedily on the greedy card (the same text twice, a phrase
repeated), the model-versus-counts chart sits on its card, the timeline samples are listed, and two quiz answers
worked out from the lesson (temperature by hand, which checkpoint to keep) are graded right."""

from __future__ import annotations

import json

from course.loader import load_course
from tests.ui.conftest import goto, new_app, texts

LESSON = "sampling"


def _card(card_id: str) -> int:
    return next(i for i, c in enumerate(load_course().entry(LESSON).lesson.cards) if c.id == card_id)


def _next(at, times: int = 1):
    for _ in range(times):
        at.button(key=f"lesson-{LESSON}-next").click().run()
    assert not at.exception
    return at


def test_lesson_8_widgets_on_the_page(db):
    at = _next(goto(new_app().run(), "lesson-8"), _card("greedy-repeats"))
    key = f"{LESSON}-greedy-repeats"
    at.button(key=f"{key}-more").click().run()
    assert not at.exception
    first = at.code[0].value
    at.button(key=f"{key}-clear").click().run()
    at.button(key=f"{key}-more").click().run()
    assert at.code[0].value == first, "greedy uses no randomness"
    assert first.count("the world") >= 2, "on the reference model greedy repeats a phrase within 40 tokens"
    assert "temperature 0 (greedy)" in texts(at)

    _next(at, _card("model-versus-text") - _card("greedy-repeats"))
    names = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert names == ["share in the training text (counted)", "the model's probability"]

    _next(at, _card("from-gibberish-to-words") - _card("model-versus-text"))
    assert "Step **0**" in texts(at) and len(at.code) >= 3


def test_worked_quiz_answers(db):
    entry = load_course().entry(LESSON)
    at = goto(new_app().run(), "lesson-8")
    _next(at, len(entry.lesson.cards) - 1)
    at.button(key=f"lesson-{LESSON}-to-quiz").click().run()
    key = f"quiz-{entry.quiz.id}-temperature-by-hand"
    at.text_input(key=key).set_value("0.73").run()
    at.button(key=f"{key}-check").click().run()
    assert not at.exception
    assert any(e.value == "Correct!" for e in at.success)
