"""Grading every question kind, per-learner shuffling, and scores (first try and best)."""

from __future__ import annotations

import pytest

from course.grading import NotGradable, grade, parse_number, score, shuffled
from course.progress import Answer, QuestionRecord
from course.schema import FillBlanks, MultipleSelect, Numeric, Ordering, Quiz, Reflection, SingleChoice

OPTS = [{"id": k, "text": f"Option {k}", "explanation": f"Why {k}."} for k in "abcd"]


def test_single_choice_right_and_wrong():
    q = SingleChoice(id="q", type="single_choice", prompt="?", options=OPTS, answer="b", explanation="General.")
    right = grade(q, "b")
    assert right.correct is True and right.explanation == "General."
    assert [n.text for n in right.notes] == ["Option b"]
    wrong = grade(q, "c")
    assert wrong.correct is False
    assert [n.text for n in wrong.notes] == ["Option c"]  # why your choice is wrong...
    assert [n.text for n in wrong.reveal_notes] == ["Option b"]  # ...and the answer, shown only when asked
    with pytest.raises(NotGradable):
        grade(q, "z")


def test_multiple_select_needs_exactly_the_right_set():
    q = MultipleSelect(id="q", type="multiple_select", prompt="?", options=OPTS, answers=["a", "c"])
    assert grade(q, ["c", "a"]).correct is True
    partial = grade(q, ["a"])
    assert partial.correct is False and "missed 1" in partial.details[0]
    assert grade(q, ["a", "c", "d"]).correct is False


def test_fill_blanks_per_blank():
    q = FillBlanks(id="q", type="fill_blanks", prompt="?", text="the next ___ of the ___", answers=["token", "text"],
                   bank=["token", "text", "label"])
    assert grade(q, ["token", "text"]).correct is True
    half = grade(q, ["token", "label"])
    assert half.correct is False and half.headline.startswith("1 of 2")
    assert half.details == ["Look again at blank 2."] and half.reveal == ["Blank 2: “text”"]
    assert q.segments() == ["the next ", " of the ", ""]


def test_ordering():
    q = Ordering(id="q", type="ordering", prompt="?", items=[{"id": i, "text": i.upper()} for i in "xyz"])
    assert grade(q, ["x", "y", "z"]).correct is True
    fb = grade(q, ["y", "x", "z"])
    assert fb.correct is False and "X → Y → Z" in fb.reveal[0] and not fb.details
    with pytest.raises(NotGradable):
        grade(q, ["x", "x", "z"])


def test_numeric_absolute_relative_and_from_facts():
    q = Numeric(id="q", type="numeric", prompt="?", answer=4.17, tolerance=0.05, unit="nats")
    assert grade(q, 4.2).correct is True
    high = grade(q, 4.3)
    assert high.correct is False and "too high" in high.headline and "Expected 4.17" in high.reveal[0]
    rel = Numeric(id="q", type="numeric", prompt="?", answer=100, tolerance=0.1, relative=True)
    assert grade(rel, 109).correct is True and grade(rel, 111).correct is False
    own = Numeric(id="q", type="numeric", prompt="?", answer_from="run.start_loss", tolerance=0.1)
    assert grade(own, 4.2, {}).correct is None  # no run yet: not gradable, not wrong
    assert grade(own, 4.2, {"run.start_loss": 4.15}).correct is True
    with pytest.raises(NotGradable):
        grade(q, float("nan"))


@pytest.mark.parametrize("typed, number", [
    ("−0.03", -0.03),  # the Unicode minus, as a page prints a negative number
    ("-0.03", -0.03),
    ("– 1.83", -1.83),  # an en dash (a word processor's hyphen), a space after it
    ("−1,83", -1.83),  # a decimal comma
    ("+2.5", 2.5),
    ("1 000 000", 1e6), ("1\u202f000", 1000.0), ("12,345.5", 12345.5),  # spaces and commas between thousands
    ("2.5e−3", 0.0025), ("3 × 10^−2", 0.03), ("10^−5", 1e-5),  # minus signs in exponents too
])
def test_numbers_are_read_as_a_page_shows_them(typed, number):
    assert parse_number(typed) == pytest.approx(number)


@pytest.mark.parametrize("typed", [None, "", "abc", "1.2.3", "nan", "inf", "−", "4 nats", "1e999", "10^999"])
def test_what_is_not_a_number_is_none(typed):
    assert parse_number(typed) is None


def test_a_negative_answer_typed_as_displayed_is_right():
    """A change shown on a page as "−0.03" is graded like the same number typed with a hyphen."""
    q = Numeric(id="q", type="numeric", prompt="?", answer=-0.03, tolerance=0.005)
    assert grade(q, parse_number("−0.03")).correct is True
    assert grade(q, parse_number("-0.03")).correct is True
    assert grade(q, parse_number("0.03")).correct is False  # the sign still matters where it is the answer


def test_numeric_within_a_factor_is_a_log_scale_tolerance():
    """An order-of-magnitude estimate: 3e23 within a factor of 3 accepts 1e23 to 9e23, either way alike."""
    q = Numeric(id="q", type="numeric", prompt="?", answer=3e23, within_factor=3, unit="FLOPs")
    assert grade(q, 1e23).correct is True and grade(q, 9e23).correct is True
    assert grade(q, 0.99e23).correct is False and grade(q, 9.1e23).correct is False
    assert grade(q, -3e23).correct is False and grade(q, 0).correct is False
    right = grade(q, 2e23)
    assert "1e+23 to 9e+23" in right.details[0] and "factor of 3" in right.details[0]
    own = Numeric(id="q", type="numeric", prompt="?", answer_from="run.gpt3_years", within_factor=10)
    assert grade(own, 5e4, {"run.gpt3_years": 3e5}).correct is True
    assert grade(own, 2e4, {"run.gpt3_years": 3e5}).correct is False
    with pytest.raises(ValueError, match="not both"):
        Numeric(id="q", type="numeric", prompt="?", answer=3, within_factor=3, tolerance=1)
    with pytest.raises(ValueError, match="positive answer"):
        Numeric(id="q", type="numeric", prompt="?", answer=0, within_factor=3)
    with pytest.raises(ValueError):
        Numeric(id="q", type="numeric", prompt="?", answer=3, within_factor=1)


def test_reflection_needs_minimum_length():
    q = Reflection(id="q", type="reflection", prompt="?", min_chars=20)
    assert grade(q, "too short").correct is False
    assert grade(q, "long enough to count as a reflection").correct is None


def test_shuffle_is_stable_per_learner_and_differs_between_learners():
    items = list(range(8))
    assert shuffled(items, 1, "quiz", "q") == shuffled(items, 1, "quiz", "q")
    orders = {tuple(shuffled(items, learner, "quiz", "q")) for learner in range(10)}
    assert len(orders) > 5
    assert sorted(shuffled(items, 3, "x")) == items
    for seed in range(50):  # an ordering question never starts out solved
        assert shuffled([1, 2, 3], seed) != [1, 2, 3]


def test_score_first_try_and_best():
    quiz = Quiz(id="z", lesson="l", title="t", questions=[
        SingleChoice(id="a", type="single_choice", prompt="?", options=OPTS, answer="a"),
        SingleChoice(id="b", type="single_choice", prompt="?", options=OPTS, answer="a"),
        Reflection(id="r", type="reflection", prompt="?", min_chars=5),
    ])

    def rec(first, ever, response="a"):
        return QuestionRecord(2, first, ever, Answer("x", response, ever, 0.0))

    s = score(quiz, {"a": rec(True, True), "b": rec(False, True), "r": rec(None, None, "thoughtful")})
    assert (s.graded, s.first_try, s.best, s.answered, s.total, s.done) == (2, 1, 2, 3, 3, True)
    assert not score(quiz, {"a": rec(True, True)}).done
