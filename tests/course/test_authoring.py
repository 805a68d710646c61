"""The authoring rules `course.validate` adds to the schema: cards short enough to read at once, and quizzes whose
right answers cannot be picked by their length. Both are refused by the validator while the course still shows the
content (a learner is never locked out of a lesson for a style rule)."""

from __future__ import annotations

from course.authoring import MAX_CARD_WORDS, answer_length_problems, card_words
from course.loader import load_course
from course.schema import Quiz
from tests.course.test_validate import LESSON, QUIZ, make_course, one, problems_for


def choice(qid: str, right: str, *wrong: str) -> dict:
    options = [{"id": "right", "text": right, "explanation": "Yes."}]
    options += [{"id": f"wrong-{i}", "text": text, "explanation": "No."} for i, text in enumerate(wrong)]
    return {"id": qid, "type": "single_choice", "prompt": "Which?", "answer": "right", "options": options}


def quiz(*questions: dict) -> Quiz:
    return Quiz.model_validate({"id": "q", "lesson": "demo", "title": "Q", "questions": list(questions)})


LONG = "the right answer with every qualification a careful author adds"
MIDDLE = "an answer of middling length"


def test_a_card_over_the_limit_is_refused_but_still_shown(tmp_path):
    words = " ".join(["word"] * MAX_CARD_WORDS)
    lesson = LESSON.replace("body: Hello **world**.", f"body: Hello {words}")
    msg = one(problems_for(tmp_path, lesson=lesson), "lessons/01-demo.yaml", "card 'first'")
    assert f"{MAX_CARD_WORDS + 1} words" in msg and "split it in two" in msg
    course = load_course(tmp_path / "lessons", tmp_path / "quizzes")
    assert course.entries[0].ok and course.entries[0].lesson.cards[0].id == "first"  # the learner still gets it


def test_card_words_count_the_text_under_the_widget_too(tmp_path):
    lesson = load_course(make_course(tmp_path) / "lessons", tmp_path / "quizzes").lessons[0]
    card = lesson.cards[1].model_copy(update={"after": "three more words"})
    assert card_words(card) == card_words(lesson.cards[1]) + 3


def test_right_answer_longest_too_often_names_the_questions():
    longest = [choice(f"q{i}", LONG, "short", "also short") for i in range(2)]
    (msg,) = answer_length_problems(quiz(*longest, choice("q2", MIDDLE, "short", LONG)))
    assert "longest in 2 of 3" in msg and "(q0, q1)" in msg and "at most 1" in msg


def test_right_answer_shortest_too_often_is_refused_as_well():
    shortest = [choice(f"q{i}", "short", LONG, MIDDLE) for i in range(2)]
    (msg,) = answer_length_problems(quiz(*shortest))
    assert "shortest in 2 of 2" in msg


def test_about_a_third_is_allowed_and_ties_give_nothing_away():
    assert answer_length_problems(quiz(choice("q0", LONG, "short", MIDDLE), choice("q1", MIDDLE, "short", LONG),
                                       choice("q2", MIDDLE, LONG, "short"))) == []
    tied = [choice(f"q{i}", "About 1.39", "About 2.00", "0.25") for i in range(3)]
    assert answer_length_problems(quiz(*tied)) == []


def test_the_validator_reports_a_quiz_that_gives_its_answers_away(tmp_path):
    giveaway = QUIZ.replace("text: The right one,", f"text: {LONG},")
    giveaway += "\n".join([
        "  - id: pick-2",
        "    type: single_choice",
        "    prompt: Pick again.",
        "    answer: right",
        "    options:",
        f"      - {{id: right, text: {LONG}, explanation: Because.}}",
        "      - {id: wrong, text: Short, explanation: Because not.}",
    ]) + "\n"
    one(problems_for(tmp_path, quiz=giveaway), "quizzes/demo-quiz.yaml", "quiz 'demo-quiz'", "longest in 2 of 2")
