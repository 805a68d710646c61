"""Grade a learner's response to any question kind and say why, plus the quiz score and per-learner shuffling.

Responses are plain JSON-able values, stored exactly as given:
single_choice -> option id; multiple_select -> list of option ids; fill_blanks -> list of words (one per blank);
ordering -> list of item ids; numeric -> number; reflection -> text.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from course.progress import QuestionRecord
from course.schema import (
    FillBlanks,
    MultipleSelect,
    Numeric,
    Ordering,
    Question,
    Quiz,
    Reflection,
    SingleChoice,
)

T = TypeVar("T")


@dataclass(frozen=True)
class OptionNote:
    text: str
    explanation: str
    chosen: bool
    correct: bool


@dataclass(frozen=True)
class Feedback:
    correct: bool | None  # None: not graded (a reflection) or not gradable yet (a learner fact is missing)
    headline: str
    explanation: str = ""
    notes: list[OptionNote] = field(default_factory=list)  # the learner's own choices, each explained
    details: list[str] = field(default_factory=list)  # hints that do not give the answer away
    # What would give the answer away: the UI shows these only when asked, so a retry is still worth something.
    reveal_notes: list[OptionNote] = field(default_factory=list)
    reveal: list[str] = field(default_factory=list)


class NotGradable(ValueError):
    """The response has the wrong shape for the question (a bug or a tampered request, never a learner error)."""


def grade(question: Question, response: Any, facts: Mapping[str, float] | None = None) -> Feedback:
    if isinstance(question, SingleChoice):
        return _single(question, response)
    if isinstance(question, MultipleSelect):
        return _multiple(question, response)
    if isinstance(question, FillBlanks):
        return _blanks(question, response)
    if isinstance(question, Ordering):
        return _ordering(question, response)
    if isinstance(question, Numeric):
        return _numeric(question, response, facts or {})
    if isinstance(question, Reflection):
        return _reflection(question, response)
    raise NotGradable(f"unknown question kind {type(question).__name__}")


def _single(q: SingleChoice, response: Any) -> Feedback:
    ids = {o.id for o in q.options}
    if response not in ids:
        raise NotGradable(f"{response!r} is not an option of {q.id}")
    notes = [OptionNote(o.text, o.explanation, o.id == response, o.id == q.answer) for o in q.options]
    ok = response == q.answer
    chosen = [n for n in notes if n.chosen]
    right = [] if ok else [n for n in notes if n.correct]
    return Feedback(ok, "Correct!" if ok else "Not quite.", q.explanation, chosen, reveal_notes=right)


def _multiple(q: MultipleSelect, response: Any) -> Feedback:
    if not isinstance(response, list) or not set(response) <= {o.id for o in q.options}:
        raise NotGradable(f"{response!r} is not a list of options of {q.id}")
    chosen, right = set(response), set(q.answers)
    notes = [OptionNote(o.text, o.explanation, o.id in chosen, o.id in right) for o in q.options]
    ok = chosen == right
    mine = [n for n in notes if n.chosen]
    missed, extra = len(right - chosen), len(chosen - right)
    details = []
    if missed:
        details.append(f"You missed {missed} correct option{'s' if missed > 1 else ''}.")
    if extra:
        details.append(f"You picked {extra} option{'s' if extra > 1 else ''} that {'are' if extra > 1 else 'is'} not right.")
    headline = "Correct: you found all of them!" if ok else "Not quite."
    return Feedback(ok, headline, q.explanation, notes if ok else mine, details, reveal_notes=[] if ok else notes)


def _blanks(q: FillBlanks, response: Any) -> Feedback:
    if not isinstance(response, list) or len(response) != len(q.answers):
        raise NotGradable(f"{q.id} needs {len(q.answers)} words")
    right = [given == want for given, want in zip(response, q.answers, strict=True)]
    ok = all(right)
    wrong = [i + 1 for i, r in enumerate(right) if not r]
    details = [] if ok else [f"Look again at blank{'s' if len(wrong) > 1 else ''} {', '.join(map(str, wrong))}."]
    reveal = [] if ok else [f"Blank {i}: “{q.answers[i - 1]}”" for i in wrong]
    return Feedback(ok, "Correct!" if ok else f"{sum(right)} of {len(right)} blanks right.", q.explanation, details=details, reveal=reveal)


def _ordering(q: Ordering, response: Any) -> Feedback:
    ids = [i.id for i in q.items]
    if not isinstance(response, list) or sorted(response) != sorted(ids):
        raise NotGradable(f"{q.id} needs every item exactly once")
    ok = response == ids
    in_place = sum(a == b for a, b in zip(response, ids, strict=True))
    reveal = [] if ok else ["The right order: " + " → ".join(i.text for i in q.items)]
    headline = "Correct order!" if ok else f"{in_place} of {len(ids)} in the right place."
    return Feedback(ok, headline, q.explanation, reveal=reveal)


# Minus signs as pages and keyboards write them: the Unicode minus (what a page shows for "−0.03"), the en and
# figure dashes a word processor turns a hyphen into, and the small and full-width hyphen-minus.
_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2012": "-", "\ufe63": "-", "\uff0d": "-"})
# Spaces people put inside numbers: ordinary, no-break, narrow no-break and thin spaces, and underscores.
_NUMBER_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009_")


def parse_number(text: str | None) -> float | None:
    """A typed answer as a number, or None when it is not one. A number may be written as a page shows it:

    '4.17' -> 4.17, '1,000' -> 1000.0, '4,17' -> 4.17, '3e23' -> 3e23, 'abc' -> None; a minus sign as the page
    prints it ('−0.03', with the Unicode minus, is -0.03, like '-0.03'); and the ways people write powers of ten by
    hand: '3x10^23', '3 × 10^23', '3*10**23', '10^5', '10^−5'.

    >>> [parse_number(t) for t in ("3x10^23", "3 × 10^23", "3*10**23", "10^5", "1e3", "x")]
    [3e+23, 3e+23, 3e+23, 100000.0, 1000.0, None]
    >>> [parse_number(t) for t in ("−0.03", "–1.5", "+2", "2.5e−3", "1 000 000")]
    [-0.03, -1.5, 2.0, 0.0025, 1000000.0]
    """
    if text is None:
        return None
    t = text.strip().translate(_MINUS).translate(_NUMBER_SPACES)
    power = re.fullmatch(r"(?:([-+]?\d+(?:[.,]\d+)?)[x×*·])?10(?:\^|\*\*)([-+]?\d+)", t)
    if power:
        mantissa = float((power.group(1) or "1").replace(",", "."))
        try:
            value = mantissa * 10.0 ** int(power.group(2))
        except OverflowError:  # 10^999 is no answer to any question here
            return None
        return value if math.isfinite(value) else None
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")
    else:
        t = t.replace(",", ".")
    try:
        value = float(t)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def expected_number(q: Numeric, facts: Mapping[str, float]) -> float | None:
    return q.answer if q.answer_from is None else facts.get(q.answer_from)


def _numeric(q: Numeric, response: Any, facts: Mapping[str, float]) -> Feedback:
    if isinstance(response, bool) or not isinstance(response, int | float) or not math.isfinite(response):
        raise NotGradable(f"{q.id} needs a finite number")
    want = expected_number(q, facts)
    if want is None:
        return Feedback(None, "This question is about your own work, which isn't there yet.", q.explanation)
    unit = f" {q.unit}" if q.unit else ""
    if q.within_factor is not None:
        f = q.within_factor
        ok = want > 0 and response > 0 and want / f <= response * (1 + 1e-12) and response <= want * f * (1 + 1e-12)
        expected = (f"Expected about {want:.3g}{unit} (anything from {want / f:.3g} to {want * f:.3g} counts: within "
                    f"a factor of {f:g}); you said {response:g}{unit}.")
    else:
        allowed = q.tolerance * abs(want) if q.relative else q.tolerance
        ok = abs(response - want) <= allowed + 1e-12
        margin = f"{q.tolerance:.0%}" if q.relative else f"{allowed:g}{unit}"
        expected = f"Expected {want:.4g}{unit} (within ±{margin}); you said {response:g}{unit}."
    if ok:
        return Feedback(True, "Correct!", q.explanation, details=[expected])
    hint = "too high" if response > want else "too low"
    return Feedback(False, f"Not quite: your answer is {hint}.", q.explanation, reveal=[expected])


def _reflection(q: Reflection, response: Any) -> Feedback:
    if not isinstance(response, str):
        raise NotGradable(f"{q.id} needs text")
    if len(response.strip()) < q.min_chars:
        return Feedback(False, f"Write a little more: at least {q.min_chars} characters (you have {len(response.strip())}).")
    return Feedback(None, "Saved. There is no single right answer here.", q.explanation)


def reflection_long_enough(q: Reflection, text: str) -> bool:
    return len(text.strip()) >= q.min_chars


# ------------------------------------------------------------------ shuffling and scores


def shuffled(items: Sequence[T], *seed_parts: object) -> list[T]:
    """The same order every time for the same learner and question, a different one for another learner.

    Ordering questions never start in the correct order (that would give the answer away).
    """
    seed = int.from_bytes(hashlib.sha256("|".join(map(str, seed_parts)).encode()).digest()[:8], "big")
    out = list(items)
    random.Random(seed).shuffle(out)
    if len(out) > 1 and out == list(items):
        out = out[1:] + out[:1]
    return out


def is_graded(question: Question) -> bool:
    return not isinstance(question, Reflection)


@dataclass(frozen=True)
class QuizScore:
    graded: int  # questions that can be right or wrong
    first_try: int  # right on the first attempt
    best: int  # right at some attempt
    answered: int  # questions with any accepted answer (reflections count when long enough)
    total: int

    @property
    def done(self) -> bool:
        return self.answered == self.total


def score(quiz: Quiz, records: Mapping[str, QuestionRecord]) -> QuizScore:
    graded = [q for q in quiz.questions if is_graded(q)]
    first = sum(1 for q in graded if (r := records.get(q.id)) and r.first_correct)
    best = sum(1 for q in graded if (r := records.get(q.id)) and r.ever_correct)
    answered = 0
    for q in quiz.questions:
        r = records.get(q.id)
        if r is None:
            continue
        if isinstance(q, Reflection):
            answered += isinstance(r.last.response, str) and reflection_long_enough(q, r.last.response)
        else:
            answered += 1
    return QuizScore(len(graded), first, best, answered, len(quiz.questions))
