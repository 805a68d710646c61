"""The validator: one failing fixture per problem class, each message naming the file and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from course.loader import load_course
from course.validate import main, validate

LESSON = """\
id: demo
number: 1
title: Demo lesson
minutes: 5
summary: A lesson used by the tests.
objectives: [You can run the tests.]
quiz: demo-quiz
cards:
  - id: first
    title: First card
    body: Hello **world**.
  - id: second
    title: Second card
    body: A widget follows.
    widget:
      name: next_char_counts
      params: {context: "th", top_k: 10}
"""

QUIZ = """\
id: demo-quiz
lesson: demo
title: Demo quiz
questions:
  - id: pick
    type: single_choice
    prompt: Pick one.
    answer: right
    options:
      - {id: right, text: The right one, explanation: Because.}
      - {id: wrong, text: The wrong one, explanation: Because not.}
  - id: blank
    type: fill_blanks
    prompt: Fill it.
    text: The next ___ is predicted.
    answers: [token]
    bank: [token, label]
  - id: order
    type: ordering
    prompt: Order them.
    items:
      - {id: a, text: Extract}
      - {id: b, text: Transform}
      - {id: c, text: Load}
  - id: number
    type: numeric
    prompt: How much?
    answer: 4.17
    tolerance: 0.05
  - id: think
    type: reflection
    prompt: Reflect.
"""


def make_course(tmp_path: Path, lesson: str | None = LESSON, quiz: str | None = QUIZ) -> Path:
    (tmp_path / "lessons").mkdir()
    (tmp_path / "quizzes").mkdir()
    if lesson is not None:
        (tmp_path / "lessons" / "01-demo.yaml").write_text(lesson)
    if quiz is not None:
        (tmp_path / "quizzes" / "demo-quiz.yaml").write_text(quiz)
    return tmp_path


def problems_for(tmp_path: Path, lesson: str | None = LESSON, quiz: str | None = QUIZ) -> list[str]:
    root = make_course(tmp_path, lesson, quiz)
    return validate([root / "lessons", root / "quizzes"])


def test_fixture_is_valid(tmp_path):
    assert problems_for(tmp_path) == []


def test_shipped_content_is_valid(capsys):
    assert main([]) == 0
    assert "All content is valid" in capsys.readouterr().out


def one(problems: list[str], *needles: str) -> str:
    hits = [p for p in problems if all(n in p for n in needles)]
    assert hits, f"no problem mentions {needles}: {problems}"
    return hits[0]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    broken = LESSON.replace("title: Demo lesson", "title: [unclosed")
    msg = one(problems_for(tmp_path, lesson=broken), "lessons/01-demo.yaml:", "YAML syntax error")
    assert msg.split(":")[1].isdigit()


def test_wrong_type(tmp_path):
    msg = one(problems_for(tmp_path, lesson=LESSON.replace("minutes: 5", "minutes: ten")), "01-demo.yaml:4", "minutes")
    assert "integer" in msg


def test_missing_field(tmp_path):
    one(problems_for(tmp_path, lesson=LESSON.replace("summary: A lesson used by the tests.\n", "")), "01-demo.yaml", "summary", "required")


def test_unknown_field(tmp_path):
    one(problems_for(tmp_path, lesson=LESSON.replace("minutes: 5", "minutes: 5\ntitel: typo")), "01-demo.yaml:5", "titel", "unknown field")


def test_duplicate_lesson_id_and_number(tmp_path):
    root = make_course(tmp_path)
    (root / "lessons" / "02-copy.yaml").write_text(LESSON.replace("number: 1", "number: 2"))
    (root / "lessons" / "03-copy.yaml").write_text(LESSON.replace("id: demo\n", "id: other\n"))
    problems = validate([root / "lessons", root / "quizzes"])
    one(problems, "02-copy.yaml", "duplicate lesson id 'demo'", "01-demo.yaml")
    one(problems, "03-copy.yaml", "duplicate lesson number 1")


def test_duplicate_card_and_question_ids(tmp_path):
    problems = problems_for(tmp_path, lesson=LESSON.replace("id: second", "id: first"), quiz=QUIZ.replace("id: blank", "id: pick"))
    one(problems, "01-demo.yaml", "lesson 'demo'", "duplicate card id 'first'")
    one(problems, "demo-quiz.yaml", "questions", "duplicate question id 'pick'")


def test_lesson_points_at_missing_quiz(tmp_path):
    one(problems_for(tmp_path, quiz=None), "01-demo.yaml", "quiz", "'demo-quiz', which no file in quizzes/ defines")


def test_unknown_widget(tmp_path):
    one(problems_for(tmp_path, lesson=LESSON.replace("name: next_char_counts", "name: magic_box")),
        "01-demo.yaml:16", "cards[1].widget", "unknown widget 'magic_box'")


def test_bad_widget_parameter(tmp_path):
    one(problems_for(tmp_path, lesson=LESSON.replace("top_k: 10", "top_k: 500")), "01-demo.yaml", "cards[1].widget", "top_k")


def test_unknown_widget_parameter(tmp_path):
    one(problems_for(tmp_path, lesson=LESSON.replace('context: "th"', 'context: "th", colour: red')), "01-demo.yaml", "colour")


@pytest.mark.parametrize("corpus", ["python_stdlib", "web_crawl", "tinyshakespeare"])
def test_every_corpus_of_the_manifest_is_accepted(tmp_path, corpus):
    lesson = LESSON.replace('context: "th"', f'context: "th", corpus: {corpus}')
    assert problems_for(tmp_path, lesson=lesson) == []


@pytest.mark.parametrize("corpus", ["python_stdlib_LICENSE", "python_stdlib_sample", "../README", "/etc/passwd"])
def test_a_file_name_is_not_a_corpus_id(tmp_path, corpus):
    lesson = LESSON.replace('context: "th"', f'context: "th", corpus: "{corpus}"')
    one(problems_for(tmp_path, lesson=lesson), "01-demo.yaml", "cards[1].widget",
        f"unknown corpus '{corpus}'; known corpora are: tinyshakespeare, python_stdlib, web_crawl")


def test_choice_answer_not_among_options(tmp_path):
    one(problems_for(tmp_path, quiz=QUIZ.replace("answer: right", "answer: missing")),
        "quizzes/demo-quiz.yaml:", "questions[0]", "answer 'missing' is not among the option ids")


def test_blank_without_bank_word(tmp_path):
    one(problems_for(tmp_path, quiz=QUIZ.replace("answers: [token]", "answers: [word]")),
        "demo-quiz.yaml", "questions[1]", "no matching word in the bank")


def test_ordering_with_duplicates(tmp_path):
    one(problems_for(tmp_path, quiz=QUIZ.replace("{id: c, text: Load}", "{id: a, text: Load}")),
        "demo-quiz.yaml", "questions[2]", "duplicate item id 'a'")


def test_negative_tolerance(tmp_path):
    one(problems_for(tmp_path, quiz=QUIZ.replace("tolerance: 0.05", "tolerance: -1")),
        "demo-quiz.yaml", "questions[3].tolerance", "must not be negative")


def test_unknown_question_type(tmp_path):
    one(problems_for(tmp_path, quiz=QUIZ.replace("type: reflection", "type: essay")), "demo-quiz.yaml", "questions[4]", "unknown question type")


def test_empty_file(tmp_path):
    one(problems_for(tmp_path, lesson=""), "01-demo.yaml", "file is empty")


@pytest.mark.parametrize("body, kind", [("- just\n- a list\n", "list"), ("just a sentence\n", "str")])
def test_not_a_mapping(tmp_path, body, kind):
    one(problems_for(tmp_path, quiz=body), "demo-quiz.yaml", f"found a {kind}")


def test_every_problem_reported_at_once(tmp_path, capsys):
    bad_lesson = LESSON.replace("minutes: 5", "minutes: -3").replace("title: Demo lesson\n", "")
    bad_quiz = QUIZ.replace("answer: right", "answer: nope").replace("tolerance: 0.05", "tolerance: -2")
    root = make_course(tmp_path, bad_lesson, bad_quiz)
    assert main([str(root / "lessons"), str(root / "quizzes")]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) >= 3  # lesson's two problems; the broken quiz is reported too
    assert any("minutes" in line for line in out) and any("title" in line for line in out)


def test_broken_lesson_is_isolated(tmp_path):
    root = make_course(tmp_path)
    (root / "lessons" / "02-broken.yaml").write_text("id: broken\nnumber: 2\n")
    course = load_course(root / "lessons", root / "quizzes")
    assert [lesson.id for lesson in course.lessons] == ["demo"]
    broken = [e for e in course.entries if not e.ok]
    assert len(broken) == 1 and broken[0].file.name == "02-broken.yaml"
    assert any("title" in str(p) for p in broken[0].problems)


def test_broken_quiz_keeps_its_lesson(tmp_path):
    root = make_course(tmp_path, quiz=QUIZ.replace("answer: right", "answer: nope"))
    entry = load_course(root / "lessons", root / "quizzes").entry("demo")
    assert entry.lesson is not None and entry.quiz is None
    assert any("nope" in str(p) for p in entry.quiz_problems)


def test_course_reloads_when_a_file_changes(tmp_path):
    root = make_course(tmp_path)
    first = load_course(root / "lessons", root / "quizzes")
    assert load_course(root / "lessons", root / "quizzes") is first  # cached: no re-parse on a rerun
    path = root / "lessons" / "01-demo.yaml"
    path.write_text(LESSON.replace("Demo lesson", "Renamed lesson") + textwrap.dedent("\n"))
    assert load_course(root / "lessons", root / "quizzes").lessons[0].title == "Renamed lesson"


def test_pipeline_stages_are_known_listed_once_and_put_in_pipeline_order() -> None:
    import pytest
    from pydantic import ValidationError

    from course.schema import Lesson

    base = {"id": "x", "number": 1, "title": "X", "minutes": 5, "summary": "s", "objectives": ["o"],
            "cards": [{"id": "c", "title": "C", "body": "b"}]}
    assert Lesson.model_validate({**base, "stages": ["load", "extract"]}).stages == ["extract", "load"]
    with pytest.raises(ValidationError, match="twice"):
        Lesson.model_validate({**base, "stages": ["load", "load"]})
    with pytest.raises(ValidationError):
        Lesson.model_validate({**base, "stages": ["train"]})
