"""Lesson 10 (load and beyond) as a page: its quiz asks the learner to size their own checkpoint in bf16 (worked
from their run's parameter count, and waiting for a run when there is none) and grades the 4-bit estimate."""

from __future__ import annotations

from dataclasses import replace

from engine.train.config import PRESETS
from engine.train.job import run_job
from paths import DEFAULT_CORPUS
from tests.ui.conftest import answer_number, open_quiz, texts

LESSON = "load-and-beyond"


def test_the_bf16_question_is_worked_from_the_learners_own_checkpoint(db, tmp_path):
    from engine.cost.flops import count_parameters
    from ui.run_compute import model_config
    from ui.run_view import load
    from ui.session import store

    at, quiz = open_quiz(LESSON)
    assert "lesson 7's training card" in texts(at)  # no run yet: the question waits for one
    assert not [t for t in at.text_input if t.key == f"quiz-{quiz}-your-model-in-bf16"]

    run_dir = tmp_path / "run"
    status, _, _ = run_job(replace(PRESETS["tiny"], max_steps=5), DEFAULT_CORPUS.read_text()[:20_000], None, None,
                           run_dir)
    assert status == "finished"
    learner = store().last_learner()
    store().set_fact(learner.id, "run.main", {"run_id": "from-disk", "run_dir": str(run_dir), "label": "x"})
    parameters = count_parameters(model_config(load(learner.id, "main"))).total
    at.run()
    answer_number(at, quiz, "your-model-in-bf16", f"{parameters * 4 / 1e6:.4f}")  # the float32 size: twice too much
    assert "your answer is too high" in texts(at)
    answer_number(at, quiz, "your-model-in-bf16", f"{parameters * 2 / 1e6:.4f}")
    assert any(e.value == "Correct!" for e in at.success)


def test_the_four_bit_estimate(db):
    at, quiz = open_quiz(LESSON)
    answer_number(at, quiz, "seven-billion-four-bit", "3.5")
    assert any(e.value == "Correct!" for e in at.success)
