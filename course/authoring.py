"""Authoring rules the validator checks on content that already parses: a card short enough to read in one go, and
quizzes whose right answers cannot be spotted by their length.

Why not in the schema: a file that breaks these rules still works for a learner, so the course keeps showing it;
only `python -m course.validate` (and so `make test`) refuses it. A card over MAX_CARD_WORDS is two cards' worth of
reading. Test writers tend to make the right option the longest, because it carries the qualifications the wrong
ones lack, and a learner who picks the longest option then scores without reading; trimming every right option
makes "pick the shortest" work instead. So the right option may stand out at either end in about a third of a
quiz's single-choice questions, where chance alone would put it there in a quarter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from course.schema import Card, Lesson, Quiz, SingleChoice

MAX_CARD_WORDS = 350


def card_words(card: Card) -> int:
    """Words a learner reads on a card: its body and the text under its widget.

    >>> card_words(Card(id="c", title="T", body="One two three.", after="Four **five**"))
    5
    """
    return len(re.findall(r"\S+", f"{card.body} {card.after}"))


def long_cards(lesson: Lesson) -> list[tuple[str, int]]:
    """(card id, words) for every card of `lesson` over MAX_CARD_WORDS."""
    return [(card.id, n) for card in lesson.cards if (n := card_words(card)) > MAX_CARD_WORDS]


def answer_stands_out(question: SingleChoice) -> str | None:
    """"longest" or "shortest" when the right option is strictly longer (or shorter) than every other one, else
    None (a tie gives nothing away).

    >>> q = SingleChoice(type="single_choice", id="q", prompt="?", answer="a", options=[
    ...     {"id": "a", "text": "Right, with every qualification", "explanation": "."},
    ...     {"id": "b", "text": "Wrong", "explanation": "."}, {"id": "c", "text": "Also wrong", "explanation": "."}])
    >>> answer_stands_out(q)
    'longest'
    """
    right = next(len(o.text) for o in question.options if o.id == question.answer)
    others = [len(o.text) for o in question.options if o.id != question.answer]
    return "longest" if right > max(others) else "shortest" if right < min(others) else None


def longest_allowed(questions: int) -> int:
    """How many of a quiz's single-choice questions may have the longest option as their answer: about a third.

    >>> [longest_allowed(n) for n in (1, 2, 3, 4, 5, 6, 9)]
    [1, 1, 1, 1, 2, 2, 3]
    """
    return max(1, round(questions / 3))


def answer_length_problems(quiz: Quiz) -> list[str]:
    """A sentence for the author for each end (longest, shortest) where the right option sits in too many of `quiz`'s
    single-choice questions."""
    single = [q for q in quiz.questions if isinstance(q, SingleChoice)]
    allowed = longest_allowed(len(single))
    found = []
    for end, fix in (("longest", "trim the right options or give the wrong ones the same weight"),
                     ("shortest", "give the right options the weight of the wrong ones")):
        ids = [q.id for q in single if answer_stands_out(q) == end]
        if len(ids) > allowed:
            found.append(f"the right option is the {end} in {len(ids)} of {len(single)} single-choice questions "
                         f"({', '.join(ids)}); at most {allowed} may be, or a learner can pick by length: {fix}")
    return found


def problems(lessons: Iterable[Lesson], quizzes: Iterable[Quiz]) -> list[tuple[str, str]]:
    """(where, message) for every rule broken, e.g. ("lesson 'x', card 'y'", "412 words; ...")."""
    found = [(f"lesson {lesson.id!r}, card {card_id!r}",
              f"{words} words; a card holds at most {MAX_CARD_WORDS}: split it in two")
             for lesson in lessons for card_id, words in long_cards(lesson)]
    found += [(f"quiz {quiz.id!r}", message) for quiz in quizzes for message in answer_length_problems(quiz)]
    return found
