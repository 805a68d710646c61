"""Hostile content files: whatever a lesson, quiz or catalogue file holds, the validator and the loaders answer with
problems that name the file (and the field, where there is one), never with a crash, a hang or a memory blow-up.

Property-based (hypothesis) where the space is large: random YAML text, random bytes, random YAML trees in every
place a lesson or quiz has a value, anchors and aliases; exhaustive where it is small: every field given every wrong
type. Example counts are kept modest so the file runs in a few seconds on a 2-core machine.
"""

from __future__ import annotations

import copy
import datetime
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import safe_yaml
from course.catalogues import check_accelerators, check_catalogues, check_published_models
from course.loader import MAX_PROBLEMS_PER_FILE, Problem, load_from_files, rel_path
from course.validate import main

FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LESSON = {
    "id": "demo", "number": 1, "title": "Demo", "minutes": 5, "summary": "A lesson.", "objectives": ["Run it."],
    "stages": ["extract"], "quiz": "demo-quiz",
    "cards": [
        {"id": "first", "title": "First", "icon": "📜", "body": "Hello.", "after": ""},
        {"id": "second", "title": "Second", "body": "A widget.",
         "widget": {"name": "next_char_counts", "params": {"context": "th", "top_k": 10}}},
    ],
}
QUIZ = {
    "id": "demo-quiz", "lesson": "demo", "title": "Demo quiz",
    "questions": [
        {"id": "pick", "type": "single_choice", "prompt": "Pick.", "explanation": "", "answer": "right",
         "options": [{"id": "right", "text": "Right", "explanation": "Yes."},
                     {"id": "wrong", "text": "Wrong", "explanation": "No."}]},
        {"id": "many", "type": "multiple_select", "prompt": "Pick two.", "answers": ["a", "b"],
         "options": [{"id": "a", "text": "A", "explanation": "Yes."}, {"id": "b", "text": "B", "explanation": "Yes."},
                     {"id": "c", "text": "C", "explanation": "No."}]},
        {"id": "blank", "type": "fill_blanks", "prompt": "Fill.", "text": "The next ___.", "answers": ["token"],
         "bank": ["token", "label"]},
        {"id": "order", "type": "ordering", "prompt": "Order.",
         "items": [{"id": "a", "text": "Extract"}, {"id": "b", "text": "Transform"}, {"id": "c", "text": "Load"}]},
        {"id": "number", "type": "numeric", "prompt": "How much?", "answer": 4.0, "tolerance": 0.5, "relative": False,
         "unit": "s"},
        {"id": "think", "type": "reflection", "prompt": "Why?", "hint": "Say why.", "min_chars": 20},
    ],
}
# A bomb that was expanded, or a 4 GB file that was read, takes minutes to hours; an honest refusal takes
# milliseconds. The limit sits far above both a loaded 2-core CI machine's slowest honest parse and far below any
# blow-up, so it tells the two apart without timing anything finely (speed targets live in benchmarks).
NOT_EXPANDED_S = 20.0
WRONG = [None, -7, float("nan"), True, "", "Not A Slug!", "a" * 5000, [1, "a"], {"k": [1]}, datetime.date(2020, 1, 1)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter: the pure-Python one dominated the time


def _dump(doc) -> str:
    return yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False)


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


def _checked(problems: list[Problem], path: Path) -> list[Problem]:
    """The problems of `path`, after checking that every problem names a file, prints on one line, and that a file
    gives a bounded number of them."""
    for p in problems:
        assert p.file and p.message, p
        line = str(p)
        assert "\n" not in line and line.isprintable(), repr(line)
        line.encode("utf-8")  # no lone surrogate reaches the terminal or the page
    mine = [p for p in problems if p.file == rel_path(path)]
    assert len(mine) <= MAX_PROBLEMS_PER_FILE + 1
    return mine


def _load_lesson(folder: Path, content: str | bytes) -> tuple[bool, list[Problem], Path]:
    path = _write(folder, "lesson.yaml", content)
    course = load_from_files([path], [])
    mine = _checked(course.problems, path)
    ok = bool(course.entries) and course.entries[0].ok
    assert ok or mine, "a broken file must say why"
    return ok, mine, path


def _load_quiz(folder: Path, content: str | bytes) -> tuple[bool, list[Problem], Path]:
    lesson = folder / "for-quiz.yaml"
    if not lesson.exists():
        _write(folder, lesson.name, _dump(LESSON))
    path = _write(folder, "quiz.yaml", content)
    course = load_from_files([lesson], [path])
    mine = _checked(course.problems, path)
    ok = course.entries[0].quiz is not None
    assert ok or mine or course.entries[0].quiz_problems, "a broken quiz must say why"
    return ok, mine, path


def test_the_fixtures_are_valid(folder):
    assert _load_lesson(folder, _dump(LESSON))[0]
    assert _load_quiz(folder, _dump(QUIZ))[0]


# --- random text, bytes and trees ---------------------------------------------------------------------------

YAML_PIECES = ["id", ": ", "cards", "- ", "\n", "\n  ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b", "<<: ",
               "!!int ", "!!str ", "!!binary ", "!!timestamp ", "!!python/object ", "'", '"', "|", ">", "#", "---",
               "...", "? ", "%YAML 1.1\n", "\t", "\\", "\\x00", "\x00", "\ufeff", "é", "1e9", "0x1F", "2020-13-45",
               "~", "null", "yes", "1" * 30]


@FUZZ
@given(st.lists(st.sampled_from(YAML_PIECES), max_size=60).map("".join))
def test_random_yaml_text_gives_problems_not_crashes(folder, text):
    _load_lesson(folder, text)
    _load_quiz(folder, text)
    check_accelerators(text, "acc.yaml")


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_give_problems_not_crashes(folder, data):
    ok, problems, path = _load_lesson(folder, data)
    assert not ok and all(p.file == rel_path(path) for p in problems)


SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.dates() | st.binary(max_size=8))
KEYS = st.sampled_from(["id", "title", "body", "cards", "widget", "params", "questions", "options", "type", "answer",
                        "number", "x"]) | st.text(max_size=6) | st.integers(-3, 3) | st.none() | st.booleans()
TREES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                     max_leaves=25)


def _places(doc, prefix=()):
    """Every path to a value in a document (dict keys and list indexes)."""
    yield prefix
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _places(v, (*prefix, k))


def _set(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return doc


LESSON_PLACES = list(_places(LESSON))
QUIZ_PLACES = list(_places(QUIZ))


@FUZZ
@given(st.sampled_from(LESSON_PLACES), TREES)
def test_a_random_tree_anywhere_in_a_lesson(folder, place, tree):
    _load_lesson(folder, _dump(_set(LESSON, place, tree)))


@FUZZ
@given(st.sampled_from(QUIZ_PLACES), TREES)
def test_a_random_tree_anywhere_in_a_quiz(folder, place, tree):
    _load_quiz(folder, _dump(_set(QUIZ, place, tree)))


@FUZZ
@given(st.lists(TREES, min_size=1, max_size=4))
def test_random_catalogue_rows(rows):
    text = _dump(rows)
    for check, name in ((check_accelerators, "acc.yaml"), (check_published_models, "models.yaml")):
        problems = check(text, name)
        _checked(problems, Path(name))
        assert all(p.file == name for p in problems)


# --- every field, every wrong type ---------------------------------------------------------------------------


def _leaves(doc, prefix=()):
    """Paths to every field (a dict key) in a document."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        if isinstance(k, str):
            yield (*prefix, k)
        yield from _leaves(v, (*prefix, k))


def _names_field(problems: list[Problem], path: tuple) -> bool:
    """A problem points at the field, or at a part holding it (a bad `type` makes the whole question unknown, an
    option id that changed makes the question's answer wrong)."""
    holders = ["".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path[:n]).lstrip(".")
               for n in range(1, len(path))]
    for p in problems:
        if path[-1] in p.where or p.where.startswith(("lesson", "quiz")) and len(path) == 1:
            return True
        if any(p.where.endswith(h) or h + "." in p.where or h + "[" in p.where for h in holders):
            return True
    return False


@pytest.mark.parametrize("kind", ["lesson", "quiz"])
def test_every_field_given_every_wrong_type_names_the_file_and_field(folder, kind):
    doc, load = (LESSON, _load_lesson) if kind == "lesson" else (QUIZ, _load_quiz)
    tried = 0
    for path in _leaves(doc):
        for wrong in WRONG:
            ok, problems, _ = load(folder, _dump(_set(doc, path, wrong)))
            tried += 1
            if not ok and problems:
                assert _names_field(problems, path), (path, wrong, [str(p) for p in problems])
    assert tried >= 200


# --- alias bombs, nesting, size, encodings, bad scalars -------------------------------------------------------


def _bomb(width: int, depth: int) -> str:
    """Anchors a0..aN, each a list of `width` aliases of the one before: width**depth values from a few lines."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


@FUZZ
@given(st.integers(2, 12), st.integers(1, 12), st.sampled_from(["top", "body", "params", "objectives", "option"]))
def test_alias_bombs_are_refused_quickly_with_the_file_named(folder, width, depth, where):
    bomb = _bomb(width, depth)
    last = f"*a{depth}"
    if where == "top":
        text, load = bomb, _load_lesson
    elif where == "option":
        quiz = yaml.safe_dump(QUIZ).replace("text: Right", f"text: {last}", 1)
        text, load = "anchors:\n" + "".join(f"  {line}\n" for line in bomb.splitlines()) + quiz, _load_quiz
    else:
        target = {"body": "body: Hello.", "params": "top_k: 10", "objectives": "objectives:\n- Run it."}[where]
        replacement = {"body": f"body: {last}", "params": f"top_k: {last}", "objectives": f"objectives: {last}"}[where]
        lesson = yaml.safe_dump(LESSON).replace(target, replacement, 1)
        text, load = "anchors:\n" + "".join(f"  {line}\n" for line in bomb.splitlines()) + lesson, _load_lesson
    started = time.perf_counter()
    ok, problems, path = load(folder, text)
    assert time.perf_counter() - started < NOT_EXPANDED_S
    assert not ok and problems and all(p.file == rel_path(path) for p in problems)
    if width ** (depth + 1) > safe_yaml.MAX_NODES:
        assert "alias bomb" in str(problems[0]), [str(p) for p in problems]


def test_billion_laughs_in_a_catalogue_is_refused():
    started = time.perf_counter()
    row = "- id: x\n" + "".join(f"  {line}\n" for line in _bomb(10, 9).splitlines())
    problems = check_accelerators(row, "acc.yaml")
    assert time.perf_counter() - started < NOT_EXPANDED_S
    assert problems and problems[0].file == "acc.yaml" and "alias bomb" in problems[0].message


def test_an_alias_inside_what_it_names_is_refused(folder):
    ok, problems, _ = _load_lesson(folder, "id: demo\ncards: &loop [*loop]\n")
    assert not ok and "contains itself" in str(problems[0]) and ":2:" in str(problems[0])


@FUZZ
@given(st.integers(safe_yaml.MAX_DEPTH + 1, 20_000), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting_is_refused_not_a_recursion_error(folder, depth, opener):
    if opener == "- ":
        depth = min(depth, 400)  # block style pays two characters of indentation per level
        text = "id: x\ncards:\n" + "".join("  " * i + "-\n" for i in range(depth))
    else:
        closer = "]" if opener == "[" else "}"
        text = "id: x\ncards: " + opener * depth + "1" + closer * depth + "\n"
    started = time.perf_counter()
    ok, problems, _ = _load_lesson(folder, text)
    assert time.perf_counter() - started < NOT_EXPANDED_S
    assert not ok and "levels deep" in str(problems[0])


def test_a_huge_file_is_refused_without_reading_it(folder):
    path = folder / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(4 * 1024**3)  # a sparse 4 GB file: reading it would take the whole machine
    started = time.perf_counter()
    course = load_from_files([path], [])
    assert time.perf_counter() - started < NOT_EXPANDED_S
    assert [str(p) for p in course.problems] == [
        f"{rel_path(path)}: the file is 4,194,304 KB; content files may be at most 512 KB (a lesson is about 13 KB): "
        "split it or remove what does not belong"]
    path.unlink()


def test_a_file_just_over_the_limit_is_refused_just_under_is_read(folder):
    body = "# " + "x" * 100 + "\n"
    under = yaml.safe_dump(LESSON) + body * ((safe_yaml.MAX_BYTES - 3000) // len(body))
    assert _load_lesson(folder, under)[0]
    ok, problems, _ = _load_lesson(folder, under + body * 40)
    assert not ok and "at most 512 KB" in problems[0].message


ENCODINGS = ["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "shift_jis"]


@FUZZ
@given(st.sampled_from(ENCODINGS), st.text(alphabet="éüñß€☃ ab", min_size=1, max_size=20))
def test_wrong_encodings_say_save_as_utf8(folder, encoding, words):
    text = _dump({**LESSON, "title": words})
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        return
    ok, problems, path = _load_lesson(folder, data)
    if data != text.encode("utf-8"):
        assert not ok
        assert "UTF-8" in problems[0].message or "not allowed in YAML" in problems[0].message, problems[0]
        assert problems[0].file == rel_path(path)


@pytest.mark.parametrize(("value", "words"), [
    ("2020-13-45", "read by YAML as a date"),
    ("1" * 5000, "read by YAML as an integer"),
    ("!!int junk", "read by YAML as an integer"),
    ("!!float junk", "read by YAML as a number"),
    ("!!timestamp junk", "read by YAML as a date"),
    ("!!int ''", "read by YAML as an integer"),
    ("!!bool maybe", "read by YAML as true or false"),
])
def test_values_yaml_cannot_construct_name_their_line(folder, value, words):
    text = yaml.safe_dump(LESSON).replace("minutes: 5", f"minutes: {value}")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("minutes:"))
    ok, problems, path = _load_lesson(folder, text)
    assert not ok and problems[0].line == line and words in problems[0].message, str(problems[0])
    assert "quotes" in problems[0].message


@pytest.mark.parametrize(("text", "words"), [
    ("id: x\x00\n", "not allowed in YAML"),
    ("id: x\x07\n", "not allowed in YAML"),
    ("id: !!python/object:os.system x\n", "could not determine a constructor"),
    ("id: *nowhere\n", "undefined alias"),
    ("id: x\n---\nid: y\n", "another document"),
    ("- just\n- a list\n", "found a list"),
    ("", "file is empty"),
])
def test_other_broken_files(folder, text, words):
    ok, problems, _ = _load_lesson(folder, text)
    assert not ok and words in str(problems[0])


def test_keys_with_newlines_and_lone_surrogates_print_on_one_line(folder):
    ok, problems, _ = _load_lesson(folder, yaml.safe_dump(LESSON) + '"bad\\nkey\\u202e": 1\n')
    assert not ok and any("bad\\nkey\\u202e" in p.where for p in problems), [str(p) for p in problems]
    ok, problems, _ = _load_lesson(folder, yaml.safe_dump(LESSON) + '"key\\ud800": "\\udfff"\n')
    assert not ok and problems  # _load_lesson checked that each prints on one line, as UTF-8


def test_a_file_of_many_mistakes_reports_the_first_fifty(folder):
    text = yaml.safe_dump(LESSON) + "".join(f"unknown{i}: 1\n" for i in range(5000))
    ok, problems, _ = _load_lesson(folder, text)
    assert len(problems) == MAX_PROBLEMS_PER_FILE + 1 and "4,950 more problems" in problems[-1].message


def test_the_validator_cli_lists_hostile_files_and_exits_1(tmp_path, capsys):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "bomb.yaml").write_text(_bomb(10, 9))
    (lessons / "deep.yaml").write_text("id: " + "[" * 10_000)
    (lessons / "latin.yaml").write_bytes("id: café\n".encode("latin-1"))
    (lessons / "nul.yaml").write_bytes(b"id: \x00\n")
    (tmp_path / "accelerators.yaml").write_text(_bomb(10, 9))
    (tmp_path / "published_models.yaml").write_bytes(b"\xff\xfe")
    assert main([str(lessons)]) == 1
    printed = capsys.readouterr().out.splitlines()
    for name, words in (("bomb", "alias bomb"), ("deep", "levels deep"), ("latin", "not UTF-8"), ("nul", "not allowed")):
        assert any(name + ".yaml" in line and words in line for line in printed), (name, printed)
    problems = [str(p) for p in check_catalogues(tmp_path)]
    assert "alias bomb" in problems[0] and "UTF-16" in problems[1]
