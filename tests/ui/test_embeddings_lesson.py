"""Lesson 5 (embeddings) as a page: the size tiles, the map moving with its timeline slider, the neighbours of
"e" before and after training, and a quiz answer worked out from the lesson (GPT-2's table) graded right."""

from __future__ import annotations

import json

from course.loader import load_course
from engine.load.reference import REFERENCE_DIR
from engine.look_inside.embeddings import run_projection, run_table_size
from tests.ui.conftest import goto, new_app, texts

LESSON = "embeddings"


def _card_of(widget: str) -> int:
    lesson = load_course().entry(LESSON).lesson
    return next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == widget)


def _next(at, times: int = 1):
    for _ in range(times):
        at.button(key=f"lesson-{LESSON}-next").click().run()
    assert not at.exception
    return at


def test_lesson_5_widgets_on_the_page(db):
    lesson = load_course().entry(LESSON).lesson
    at = _next(goto(new_app().run(), "lesson-5"), _card_of("embedding_table_size"))
    size = run_table_size(REFERENCE_DIR)
    assert {m.label: m.value for m in at.metric}["Numbers (V × C)"] == f"{size.numbers:,}"

    map_card = _card_of("embedding_map")
    _next(at, map_card - _card_of("embedding_table_size"))
    key = f"{LESSON}-{lesson.cards[map_card].id}"
    assert "at step 0:" in texts(at)
    before = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    final = run_projection(REFERENCE_DIR).steps[-1]
    at.select_slider(key=f"{key}-step").set_value(final).run()
    assert not at.exception
    after = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [t["x"] for t in before] != [t["x"] for t in after]
    assert f"at step {final:,}:" in texts(at)

    _next(at, _card_of("embedding_neighbours") - map_card)
    start, end = (df.value for df in at.dataframe)
    assert list(start["token"]) != list(end["token"])


def test_gpt2_table_question(db):
    entry = load_course().entry(LESSON)
    lesson, quiz = entry.lesson, entry.quiz
    at = goto(new_app().run(), "lesson-5")
    for _ in range(len(lesson.cards) - 1):
        at.button(key=f"lesson-{LESSON}-next").click().run()
    at.button(key=f"lesson-{LESSON}-to-quiz").click().run()
    key = f"quiz-{quiz.id}-gpt2-table"
    at.text_input(key=key).set_value(f"{50_257 * 768 / 1e6:.1f}").run()
    at.button(key=f"{key}-check").click().run()
    assert not at.exception
    assert any(e.value == "Correct!" for e in at.success)
