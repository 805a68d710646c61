"""Lesson 9 (compute and scaling) as a page: its quiz grades estimates on a log scale, takes powers of ten the way
people type them, and asks the throughput question only once the learner has a run to reason with."""

from __future__ import annotations

from course.loader import load_course
from tests.ui.conftest import goto, new_app, texts

LESSON = "compute-and-scaling"


def _quiz_page():
    entry = load_course().entry(LESSON)
    at = goto(new_app().run(), f"lesson-{entry.lesson.number}")
    for _ in range(len(entry.lesson.cards) - 1):
        at.button(key=f"lesson-{LESSON}-next").click().run()
    at.button(key=f"lesson-{LESSON}-to-quiz").click().run()
    assert not at.exception
    return at, entry.quiz.id


def _answer(at, quiz_id: str, question: str, text: str):
    key = f"quiz-{quiz_id}-{question}"
    at.text_input(key=key).set_value(text).run()
    at.button(key=f"{key}-check").click().run()
    assert not at.exception
    return at


def test_estimates_are_graded_within_a_factor(db):
    at, quiz = _quiz_page()
    _answer(at, quiz, "estimate-a-run", "2x10^22")  # 3.4 times 5.88e21: outside a factor of 2
    assert "your answer is too high" in texts(at)
    _answer(at, quiz, "estimate-a-run", "6 × 10^21")
    assert any(e.value == "Correct!" for e in at.success)
    _answer(at, quiz, "energy-by-hand", "8.4")
    assert sum(e.value == "Correct!" for e in at.success) == 2


def test_the_throughput_question_waits_for_the_learners_run(db):
    at, quiz = _quiz_page()
    assert "lesson 7's training card" in texts(at)
    assert not [t for t in at.text_input if t.key == f"quiz-{quiz}-your-machine-and-gpt3"]
