"""Load lesson and quiz files into validated models, collecting every problem instead of stopping at the first.

A problem names the file, the line where it can, the field path and what was expected, so a content author can
fix it without reading Python. A broken file never takes the course down: its lesson is marked broken and the
other lessons load as usual. Results are cached by the files' modification times, because Streamlit reruns the
page script on every click and re-parsing YAML each time would be wasted work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

import paths
from course import safe_yaml
from course.schema import Lesson, Quiz

ROOT = paths.ROOT
LESSONS_DIR = paths.LESSONS_DIR
QUIZZES_DIR = paths.QUIZZES_DIR
MAX_PROBLEMS_PER_FILE = 50  # a file that is all wrong gets its first fifty problems, not ten thousand lines


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


@dataclass
class LessonEntry:
    """One lesson file: the lesson (None when the file is broken), its quiz (None when missing or broken)."""

    file: Path
    lesson: Lesson | None
    quiz: Quiz | None = None
    quiz_file: Path | None = None
    problems: list[Problem] = field(default_factory=list)  # lesson-file problems (lesson is None if any)
    quiz_problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lesson is not None


@dataclass
class Course:
    entries: list[LessonEntry]  # working lessons in number order, then broken files by name
    problems: list[Problem]  # every problem in every file, for the validator

    @property
    def lessons(self) -> list[Lesson]:
        return [e.lesson for e in self.entries if e.lesson is not None]

    def entry(self, lesson_id: str) -> LessonEntry | None:
        return next((e for e in self.entries if e.lesson and e.lesson.id == lesson_id), None)

    def next_lesson(self, lesson_id: str) -> Lesson | None:
        lessons = self.lessons
        ids = [lesson.id for lesson in lessons]
        i = ids.index(lesson_id) if lesson_id in ids else -1
        return lessons[i + 1] if 0 <= i < len(lessons) - 1 else None


# ------------------------------------------------------------------ reading one file


def rel_path(path: Path) -> str:
    """`path` relative to the project, as problems name it (an outside path as it is)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _read_mapping(path: Path) -> tuple[dict[str, Any] | None, yaml.Node | None, list[Problem]]:
    name = rel_path(path)
    try:
        data, node = safe_yaml.parse(safe_yaml.read_text(path))
    except safe_yaml.YamlRefused as err:  # too big, not UTF-8, a syntax error, an alias bomb, too deep, a bad value
        return None, None, [Problem(name, err.line, "", err.message)]
    if data is None:
        return None, None, [Problem(name, None, "", "file is empty: expected a mapping of fields (id, title, ...)")]
    if not isinstance(data, dict):
        kind = type(data).__name__
        return None, None, [Problem(name, 1, "", f"expected a mapping of fields at the top level, found a {kind}")]
    return data, node, []


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree; the deepest node reached gives the line."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == key), None)
            if match is None:
                continue  # a discriminator tag or a missing field: stay on the enclosing node
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            continue
        line = node.start_mark.line + 1
    return line


def _field_path(loc: tuple[Any, ...], question_tags: bool = True) -> str:
    out = ""
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
        elif question_tags and key in _TAGS:
            continue  # pydantic adds the union member's tag; authors never wrote it as a key
        else:
            key = safe_yaml.printable(str(key), 60)  # a key from the file: may hold a newline or a lone surrogate
            out += f".{key}" if out else key
    return out


_TAGS = {"single_choice", "multiple_select", "fill_blanks", "ordering", "numeric", "reflection"}


def _friendly(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; extra fields are not allowed)"
    if kind == "union_tag_invalid":
        return f"unknown question type; expected one of: {', '.join(sorted(_TAGS))}"
    if kind == "union_tag_not_found":
        return f"question needs a `type`: one of {', '.join(sorted(_TAGS))}"
    return msg.removeprefix("Value error, ")


def _validate(path: Path, model: type[BaseModel]) -> tuple[Any, list[Problem]]:
    data, node, problems = _read_mapping(path)
    if data is None:
        return None, problems
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        label = f"{model.__name__.lower()} {safe_yaml.printable(repr(data['id']), 60)}" if isinstance(data.get("id"), str) else ""
        out = []
        errors = exc.errors(include_url=False, include_input=False)
        for err in errors[:MAX_PROBLEMS_PER_FILE]:
            where = _field_path(err["loc"])
            where = f"{label}, {where}" if label and where else (label or where)
            message = safe_yaml.printable(_friendly(err), 500)
            out.append(Problem(rel_path(path), _line_of(node, err["loc"]), where, message))
        if len(errors) > MAX_PROBLEMS_PER_FILE:
            more = len(errors) - MAX_PROBLEMS_PER_FILE
            out.append(Problem(rel_path(path), None, label, f"... and {more:,} more problems (fix these first)"))
        return None, out


# ------------------------------------------------------------------ the whole course


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_from_files(lesson_files: list[Path], quiz_files: list[Path]) -> Course:
    problems: list[Problem] = []
    quizzes: dict[str, tuple[Path, Quiz]] = {}
    broken_quiz_names: dict[str, list[Problem]] = {}  # file stem -> its problems, so a lesson can show them
    for path in quiz_files:
        quiz, errs = _validate(path, Quiz)
        problems += errs
        if quiz is None:
            broken_quiz_names[path.stem] = errs
        elif quiz.id in quizzes:
            problems.append(Problem(rel_path(path), None, f"quiz {quiz.id!r}", f"duplicate quiz id (also in {rel_path(quizzes[quiz.id][0])})"))
        else:
            quizzes[quiz.id] = (path, quiz)

    entries: list[LessonEntry] = []
    seen_ids: dict[str, Path] = {}
    seen_numbers: dict[int, Path] = {}
    for path in lesson_files:
        lesson, errs = _validate(path, Lesson)
        entry = LessonEntry(path, lesson, problems=errs)
        if lesson is not None:
            dup = None
            if lesson.id in seen_ids:
                dup = f"duplicate lesson id {lesson.id!r} (also in {rel_path(seen_ids[lesson.id])})"
            elif lesson.number in seen_numbers:
                dup = f"duplicate lesson number {lesson.number} (also in {rel_path(seen_numbers[lesson.number])})"
            if dup:
                entry.lesson = None
                entry.problems.append(Problem(rel_path(path), None, f"lesson {lesson.id!r}", dup))
            else:
                seen_ids[lesson.id] = path
                seen_numbers[lesson.number] = path
                _attach_quiz(entry, lesson, quizzes, broken_quiz_names)
        problems += entry.problems + [p for p in entry.quiz_problems if p.where.startswith("lesson ")]
        entries.append(entry)

    for quiz_id, (path, quiz) in quizzes.items():
        if quiz.lesson not in seen_ids:
            problems.append(Problem(rel_path(path), None, f"quiz {quiz_id!r}", f"names lesson {quiz.lesson!r}, which no lesson file defines"))

    entries.sort(key=lambda e: (e.lesson is None, e.lesson.number if e.lesson else 0, e.file.name))
    return Course(entries, problems)


def _attach_quiz(entry: LessonEntry, lesson: Lesson, quizzes: dict, broken: dict[str, list[Problem]]) -> None:
    if lesson.quiz is None:
        return
    if lesson.quiz in quizzes:
        qpath, quiz = quizzes[lesson.quiz]
        if quiz.lesson != lesson.id:
            entry.quiz_problems.append(Problem(rel_path(qpath), None, f"quiz {quiz.id!r}", f"says lesson {quiz.lesson!r} but lesson {lesson.id!r} points at it"))
        entry.quiz, entry.quiz_file = quiz, qpath
    elif lesson.quiz in broken:
        entry.quiz_problems = list(broken[lesson.quiz])
    else:
        entry.quiz_problems.append(Problem(rel_path(entry.file), None, f"lesson {lesson.id!r}, quiz", f"points at quiz {lesson.quiz!r}, which no file in quizzes/ defines"))


def classify(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split files and folders into lesson files and quiz files (a quiz lives under `quizzes/` or has `questions`)."""
    lessons: list[Path] = []
    quizzes: list[Path] = []
    for path in paths:
        files = _yaml_files(path) if path.is_dir() else [path]
        for f in files:
            is_quiz = f.parent.name == "quizzes" or (path.is_dir() and path.name == "quizzes") or _has_questions(f)
            (quizzes if is_quiz else lessons).append(f)
    return lessons, quizzes


def _has_questions(path: Path) -> bool:
    try:
        return "\nquestions:" in "\n" + safe_yaml.read_text(path)
    except safe_yaml.YamlRefused:
        return False  # loaded as a lesson, whose problems then say why the file cannot be read


_cache_lock = threading.Lock()
_cache: dict[tuple, Course] = {}


def load_course(lessons_dir: Path = LESSONS_DIR, quizzes_dir: Path = QUIZZES_DIR) -> Course:
    """The whole course, re-read only when a file in either folder was added, removed or changed."""
    lesson_files, quiz_files = _yaml_files(lessons_dir), _yaml_files(quizzes_dir)
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in lesson_files + quiz_files)
    key = (str(lessons_dir), str(quizzes_dir), *key)
    with _cache_lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = load_from_files(lesson_files, quiz_files)
        return _cache[key]
