"""What an instructor sees of the class: the roster, every question's difficulty, and the reflections.

Pure functions over the progress store's class-wide reads and the loaded course (no Streamlit), so the tables the
instructor's pages draw and download are the ones the tests check. Each function returns plain rows (dataclasses);
`ui/instructor.py` turns them into tables, charts and CSV files.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from course.grading import is_graded
from course.loader import Course
from course.progress import Member
from course.schema import FillBlanks, MultipleSelect, Numeric, Ordering, Question, Reflection, SingleChoice

ALL_DONE = "all done"
NOT_STARTED = "not started"


@dataclass(frozen=True)
class RosterRow:
    learner_id: int
    name: str
    email: str
    completed: int  # lessons complete
    of: int  # lessons in the course
    current: str  # the lesson they were last on and have not completed ("4. Tokenization"), ALL_DONE or NOT_STARTED
    last_active: float  # seconds since the epoch: the latest of their sign-up, visit, card, answer or completion


@dataclass(frozen=True)
class QuestionRow:
    lesson: int
    quiz_id: str
    question_id: str
    prompt: str
    kind: str
    learners: int  # learners who answered it at least once
    first_try_right: float  # share of them right on their first try, 0..1
    median_attempts: float
    wrong_answers: tuple[tuple[str, int], ...]  # the most common wrong answers, as the learner saw them, with counts


@dataclass(frozen=True)
class ReflectionRow:
    lesson: int
    quiz_id: str
    question_id: str
    prompt: str
    name: str
    text: str
    at: float


def _lesson_label(number: int, title: str) -> str:
    return f"{number}. {title.split(':')[0].strip()}"


def roster(course: Course, members: Iterable[Member], positions: Iterable[tuple[int, str, int, float]],
           completions: Iterable[tuple[int, str, float]], answers: Iterable[tuple]) -> list[RosterRow]:
    """One row per learner: lessons complete, the lesson they are on, when they were last active; most recently
    active first (who is here now comes before who left last week)."""
    lessons = {lesson.id: lesson for lesson in course.lessons}
    done: dict[int, set[str]] = defaultdict(set)
    latest: dict[int, float] = defaultdict(float)
    last_lesson: dict[int, tuple[float, str]] = {}
    for learner_id, lesson_id, _card, at in positions:
        latest[learner_id] = max(latest[learner_id], at)
        if lesson_id in lessons and at >= last_lesson.get(learner_id, (0.0, ""))[0]:
            last_lesson[learner_id] = (at, lesson_id)
    for learner_id, lesson_id, at in completions:
        latest[learner_id] = max(latest[learner_id], at)
        if lesson_id in lessons:
            done[learner_id].add(lesson_id)
    for learner_id, *_rest, at in answers:
        latest[learner_id] = max(latest[learner_id], at)
    rows = []
    for m in members:
        complete = done[m.id]
        if len(complete) == len(lessons) and lessons:
            current = ALL_DONE
        elif m.id in last_lesson and last_lesson[m.id][1] not in complete:
            lesson = lessons[last_lesson[m.id][1]]
            current = _lesson_label(lesson.number, lesson.title)
        else:  # on nothing unfinished: the first lesson they have not completed, if they ever began
            nxt = next((lesson for lesson in course.lessons if lesson.id not in complete), None)
            current = _lesson_label(nxt.number, nxt.title) if nxt and (complete or m.id in last_lesson) else NOT_STARTED
        rows.append(RosterRow(m.id, m.name, m.email or "", len(complete), len(lessons), current,
                              max(latest[m.id], m.last_seen, m.created_at)))
    return sorted(rows, key=lambda r: (-r.last_active, r.name.casefold()))


def shown_response(question: Question, response: Any) -> str:
    """An answer as the learner saw it on the page: option and item texts, not their ids.

    >>> from course.schema import SingleChoice
    >>> q = SingleChoice(type="single_choice", id="q", prompt="Which?", answer="a", options=[
    ...     {"id": "a", "text": "Tokens", "explanation": "yes"}, {"id": "b", "text": "Bytes", "explanation": "no"}])
    >>> shown_response(q, "b")
    'Bytes'
    """
    if isinstance(question, SingleChoice | MultipleSelect):
        texts = {o.id: o.text for o in question.options}
        picked = response if isinstance(response, list) else [response]
        return "; ".join(texts.get(str(p), str(p)) for p in picked) or "(nothing picked)"
    if isinstance(question, Ordering):
        texts = {i.id: i.text for i in question.items}
        return " → ".join(texts.get(str(p), str(p)) for p in response) if isinstance(response, list) else str(response)
    if isinstance(question, FillBlanks):
        return " / ".join(str(w) for w in response) if isinstance(response, list) else str(response)
    if isinstance(question, Numeric):
        return f"{response} {question.unit}".strip()
    return str(response)


def questions(course: Course, answers: Iterable[tuple[int, str, str, Any, bool | None, float]],
              top_wrong: int = 3) -> list[QuestionRow]:
    """Every graded question anyone answered: the share right on the first try, the median attempts and the most
    common wrong answers; hardest first (lowest first-try share, then most attempts)."""
    tries: dict[tuple[str, str], dict[int, list[tuple[Any, bool | None]]]] = defaultdict(lambda: defaultdict(list))
    for learner_id, quiz_id, question_id, response, correct, _at in answers:
        tries[(quiz_id, question_id)][learner_id].append((response, correct))
    rows = []
    for entry in course.entries:
        if not entry.ok or entry.quiz is None:
            continue
        for q in entry.quiz.questions:
            by_learner = tries.get((entry.quiz.id, q.id))
            if not is_graded(q) or not by_learner:
                continue
            first_right = sum(1 for given in by_learner.values() if given[0][1])
            wrong = Counter(shown_response(q, response) for given in by_learner.values()
                            for response, correct in given if correct is False)
            rows.append(QuestionRow(entry.lesson.number, entry.quiz.id, q.id, q.prompt, q.type, len(by_learner),
                                    first_right / len(by_learner),
                                    float(statistics.median(len(given) for given in by_learner.values())),
                                    tuple(wrong.most_common(top_wrong))))
    return sorted(rows, key=lambda r: (r.first_try_right, -r.median_attempts, r.lesson, r.question_id))


def reflections(course: Course, members: Iterable[Member],
                answers: Iterable[tuple[int, str, str, Any, bool | None, float]]) -> list[ReflectionRow]:
    """Each learner's latest answer to each reflection question, by lesson and question, then by name."""
    names = {m.id: m.name for m in members}
    prompts: dict[tuple[str, str], tuple[int, str]] = {}
    for entry in course.entries:
        if entry.ok and entry.quiz is not None:
            for q in entry.quiz.questions:
                if isinstance(q, Reflection):
                    prompts[(entry.quiz.id, q.id)] = (entry.lesson.number, q.prompt)
    latest: dict[tuple[str, str, int], tuple[str, float]] = {}
    for learner_id, quiz_id, question_id, response, _correct, at in answers:
        if (quiz_id, question_id) in prompts and learner_id in names and isinstance(response, str) and response.strip():
            latest[(quiz_id, question_id, learner_id)] = (response, at)
    rows = [ReflectionRow(prompts[(quiz, qid)][0], quiz, qid, prompts[(quiz, qid)][1], names[lid], text, at)
            for (quiz, qid, lid), (text, at) in latest.items()]
    return sorted(rows, key=lambda r: (r.lesson, r.quiz_id, r.question_id, r.name.casefold()))


def first_try_by_lesson(rows: Iterable[QuestionRow]) -> list[tuple[int, float]]:
    """(lesson number, mean first-try share over its answered questions): the chart of where the class struggles.

    >>> first_try_by_lesson([QuestionRow(2, "q", "a", "", "single_choice", 4, 0.5, 1, ()),
    ...                      QuestionRow(2, "q", "b", "", "single_choice", 4, 1.0, 1, ())])
    [(2, 0.75)]
    """
    by_lesson: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        by_lesson[row.lesson].append(row.first_try_right)
    return [(lesson, sum(v) / len(v)) for lesson, v in sorted(by_lesson.items())]
