"""The quiz questions about the learner's own work: every fact a question may name is computed somewhere, and the
questions that ask the learner to reason with their numbers grade the worked-out answer as right and the number
copied from a tile as wrong."""

from __future__ import annotations

import math

import pytest

from course.grading import grade, parse_number
from course.learner_facts import LEARNER_FACTS
from course.loader import load_course
from course.schema import Numeric
from ui.facts import dedup_facts, facts_from_losses, tokenizer_facts

# Computed from a run's folder by ui.facts.throughput_facts and checkpoint_facts (tested in test_cost_widgets).
FROM_A_RUN_FOLDER = {"run.achieved_tflops", "run.gpt3_years", "run.parameters", "run.bf16_mb"}


def _sample_facts() -> dict[str, float]:
    facts = facts_from_losses(4.19, 2.31)
    facts |= dedup_facts({"removed": 1234, "near": 600, "documents": 4890})
    facts |= tokenizer_facts({"bpe.vocab_size": 1024.0, "bpe.chars_per_token": 2.47})
    return facts


def test_every_declared_fact_is_computed():
    assert set(_sample_facts()) | FROM_A_RUN_FOLDER == set(LEARNER_FACTS)


def _question(number: int, answer_from: str) -> Numeric:
    entry = next(e for e in load_course().entries if e.lesson is not None and e.lesson.number == number)
    return next(q for q in entry.quiz.questions if getattr(q, "answer_from", None) == answer_from)


@pytest.mark.parametrize("number, answer_from, worked_out, copied", [
    (7, "run.final_val_bits", 2.31 / math.log(2), 2.31),  # bits per character, not the loss in nats
    (7, "run.final_val_choices", math.exp(2.31), 2.31),  # e^loss, not the loss
    (7, "run.start_loss", 2.31 + 1.88, 2.31 - 1.88),  # end minus a change shown as −1.88, not minus 1.88
    (3, "dedup.removed_percent", 100 * 1234 / 4890, 1234),  # a share of the documents, not the count
    (4, "bpe.start_loss_4x_vocab", math.log(4096), math.log(1024)),  # four times the vocabulary, not the card's
])
def test_reasoning_with_your_own_number(number, answer_from, worked_out, copied):
    q = _question(number, answer_from)
    facts = _sample_facts()
    assert grade(q, round(worked_out, 2), facts).correct is True
    assert grade(q, copied, facts).correct is False


def test_no_question_asks_to_copy_a_signed_change():
    """A question whose answer is a change the page shows with a sign (the loss's "−1.88 since step 0") would be
    marked wrong for an answer typed as shown: the quizzes ask the learner to reason with it instead."""
    for entry in load_course().entries:
        for q in entry.quiz.questions if entry.quiz else []:
            assert getattr(q, "answer_from", None) != "run.val_loss_drop", f"{entry.file.name}: {q.id}"


def test_the_start_typed_with_the_pages_minus_sign():
    q = _question(7, "run.start_loss")
    assert grade(q, parse_number("4.19"), _sample_facts()).correct is True
    assert parse_number("−1.88") == -1.88  # the change as the tile prints it reads as a negative number
