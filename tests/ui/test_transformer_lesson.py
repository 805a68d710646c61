"""Lesson 6 as a page: step to the attention card, type a prompt, pick a head, and see the heatmap and its summary;
the parameter and forward-pass cards draw from the same model."""

from __future__ import annotations

import json

from course.loader import load_course
from tests.ui.conftest import goto, new_app, texts

LESSON6 = "transformer"


def _card(name: str) -> int:
    lesson = load_course().entry(LESSON6).lesson
    return next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == name)


def _step_to(at, index: int, start: int = 0):
    for _ in range(index - start):
        at.button(key=f"lesson-{LESSON6}-next").click().run()
    return at


def test_attention_card_reacts_to_a_typed_prompt(db):
    at = goto(new_app().run(), "lesson-6")
    assert not at.exception
    lesson = load_course().entry(LESSON6).lesson
    card = _card("attention_heatmap")
    _step_to(at, card)
    key = f"{LESSON6}-{lesson.cards[card].id}"
    # The card asks for a guess first: neither the heatmap nor the notes answering it are drawn yet.
    assert not at.get("plotly_chart") and lesson.cards[card].after.split("\n")[0] not in texts(at)
    at.button(key=f"lesson-{LESSON6}-{lesson.cards[card].id}-reveal").click().run()
    assert "reference model" in texts(at)
    at.text_input(key=f"{key}-prompt").set_value("JULIET: O Romeo").run()
    at.selectbox(key=f"{key}-head").set_value(1).run()
    assert not at.exception and not at.error
    assert "**15 tokens**" in texts(at) and "head 2:" in texts(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t.split(" ·")[0] for t in spec["layout"]["xaxis"]["ticktext"]] == list("JULIET:␣O␣Romeo")


def test_parameter_and_forward_cards(db):
    at = goto(new_app().run(), "lesson-6")
    params, forward = _card("parameter_breakdown"), _card("forward_pass")
    _step_to(at, params)
    assert not at.exception and "parameters in all" not in texts(at)  # guess first
    lesson = load_course().entry(LESSON6).lesson
    at.button(key=f"lesson-{LESSON6}-{lesson.cards[params].id}-reveal").click().run()
    assert not at.exception and "parameters in all" in texts(at)
    _step_to(at, forward, params)
    assert not at.exception and "T = **32** tokens" in texts(at)
