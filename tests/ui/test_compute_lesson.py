"""Lesson 9 (compute and scaling) as a page: its quiz grades estimates on a log scale, takes powers of ten the way
people type them, and asks the throughput question only once the learner has a run to reason with."""

from __future__ import annotations

from tests.ui.conftest import answer_number, open_quiz, texts

LESSON = "compute-and-scaling"


def test_estimates_are_graded_within_a_factor(db):
    at, quiz = open_quiz(LESSON)
    answer_number(at, quiz, "estimate-a-run", "2x10^22")  # 3.4 times 5.88e21: outside a factor of 2
    assert "your answer is too high" in texts(at)
    answer_number(at, quiz, "estimate-a-run", "6 × 10^21")
    assert any(e.value == "Correct!" for e in at.success)
    answer_number(at, quiz, "energy-by-hand", "8.4")
    assert sum(e.value == "Correct!" for e in at.success) == 2


def test_the_throughput_question_waits_for_the_learners_run(db):
    at, quiz = open_quiz(LESSON)
    assert "lesson 7's training card" in texts(at)
    assert not [t for t in at.text_input if t.key == f"quiz-{quiz}-your-machine-and-gpt3"]
