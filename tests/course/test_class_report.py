"""The instructor's tables from a small class in the real progress store (SQLite and PostgreSQL) and the real
course: the roster's lessons and current lesson, questions hardest first with their wrong answers as the learners
saw them, and reflections by question with their authors."""

from __future__ import annotations

import pytest

from course import class_report
from course.loader import load_course
from course.progress import ProgressStore

QUIZ = "big-picture-quiz"


@pytest.fixture
def course():
    return load_course()


@pytest.fixture
def store(database_url):
    s = ProgressStore(database_url)
    yield s
    s.close()


def _tables(store: ProgressStore):
    return store.members(), store.all_positions(), store.all_completions(), store.all_answers()


def test_the_roster_says_who_is_where(store, course) -> None:
    ann = store.signed_in_learner("ann", "ann@example.edu", "Ann")
    bo = store.signed_in_learner("bo", "bo@example.edu", "Bo")
    cy = store.signed_in_learner("cy", "cy@example.edu", "Cy")
    first, second = course.lessons[0], course.lessons[1]
    store.set_card(ann.id, first.id, 3)
    store.mark_complete(ann.id, first.id)
    store.set_card(ann.id, second.id, 1)  # on lesson 2 now
    store.set_card(bo.id, first.id, 2)
    members, positions, completions, answers = _tables(store)
    rows = {r.name: r for r in class_report.roster(course, members, positions, completions, answers)}
    assert (rows["Ann"].completed, rows["Ann"].of) == (1, len(course.lessons))
    assert rows["Ann"].current.startswith("2. ") and rows["Bo"].current.startswith("1. ")
    assert rows["Cy"].current == class_report.NOT_STARTED and rows["Cy"].completed == 0
    assert rows["Ann"].email == "ann@example.edu" and rows["Ann"].last_active >= rows["Cy"].last_active > 0
    del cy


def test_questions_come_hardest_first_with_the_wrong_answers_learners_saw(store, course) -> None:
    quiz = course.entry("big-picture").quiz
    pick = next(q for q in quiz.questions if q.id == "where-knowledge-ends-up")
    order = next(q for q in quiz.questions if q.id == "order-the-stages")
    wrong = next(o for o in pick.options if o.id != pick.answer)
    learners = [store.signed_in_learner(s, f"{s}@example.edu", s.title()) for s in ("ann", "bo", "cy", "di")]
    for i, who in enumerate(learners):
        store.record_answer(who.id, QUIZ, order.id, [it.id for it in order.items], True)  # all right first
        if i < 3:  # three of four wrong first, each then right
            store.record_answer(who.id, QUIZ, pick.id, wrong.id, False)
        store.record_answer(who.id, QUIZ, pick.id, pick.answer, True)
    store.record_answer(learners[0].id, QUIZ, "your-own-pipeline", "Mine starts from my notes.", None)
    rows = class_report.questions(course, store.all_answers())
    assert [r.question_id for r in rows] == [pick.id, order.id]  # the harder one first; the reflection is no row
    hard = rows[0]
    assert hard.learners == 4 and hard.first_try_right == pytest.approx(0.25) and hard.median_attempts == 2.0
    assert hard.wrong_answers == ((wrong.text, 3),)  # the option's text, as the page showed it
    assert rows[1].first_try_right == 1.0 and rows[1].median_attempts == 1.0
    assert class_report.first_try_by_lesson(rows) == [(1, pytest.approx(0.625))]


def test_reflections_are_grouped_by_question_with_their_authors(store, course) -> None:
    ann = store.signed_in_learner("ann", None, "Ann")
    bo = store.signed_in_learner("bo", None, "Bo")
    store.record_answer(bo.id, QUIZ, "your-own-pipeline", "First draft.", None)
    store.record_answer(bo.id, QUIZ, "your-own-pipeline", "Second, longer thoughts.", None)  # the latest counts
    store.record_answer(ann.id, QUIZ, "your-own-pipeline", "<b>markup stays text</b>", None)
    rows = class_report.reflections(course, store.members(), store.all_answers())
    assert [(r.name, r.text) for r in rows] == [("Ann", "<b>markup stays text</b>"), ("Bo", "Second, longer thoughts.")]
    assert rows[0].lesson == 1 and rows[0].prompt
