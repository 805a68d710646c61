"""Every shipped lesson renders every card, and its quiz, without an exception or a widget error."""

from __future__ import annotations

import pytest

from course.loader import load_course
from tests.ui.conftest import goto, new_app

LESSONS = load_course().lessons


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_every_card_and_the_quiz_render(db, uploads, lesson):
    at = goto(new_app().run(), f"lesson-{lesson.number}")
    for i, card in enumerate(lesson.cards):
        assert not at.exception, f"card {i + 1}: {at.exception}"
        assert not [e.value for e in at.error], f"card {i + 1} ({card.id}) shows an error"
        assert any(card.title in s.value for s in at.header), f"card {i + 1} title missing"
        if i < len(lesson.cards) - 1:
            at.button(key=f"lesson-{lesson.id}-next").click().run()
    if lesson.quiz:
        at.button(key=f"lesson-{lesson.id}-to-quiz").click().run()
        assert not at.exception and not [e.value for e in at.error]
        quiz = load_course().entry(lesson.id).quiz
        assert sum(c.value.startswith(f"**Question {len(quiz.questions)} of") for c in at.markdown) == 1
