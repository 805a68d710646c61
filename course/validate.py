"""Validator CLI: `python -m course.validate [paths...]` (default: `lessons quizzes`; the data manifests always).

Besides the schema, it checks the authoring rules of course.authoring (cards short enough to read at once, quiz
answers that cannot be picked by their length), which the course itself does not enforce.

Prints every problem, one per line (file:line: field path: what was expected), and exits 1 if there are any.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course import authoring
from course.catalogues import check_catalogues
from course.loader import ROOT, Course, Problem, classify, load_from_files, rel_path


def validate(paths: list[Path], data_dir: Path | None = None) -> list[str]:
    """Problems in the lesson and quiz files under `paths`, and in the data manifests under data/ (the catalogues
    lesson 9 prices runs against and corpora.yaml; `data_dir` for tests)."""
    missing = [f"{p}: no such file or folder" for p in paths if not p.exists()]
    lesson_files, quiz_files = classify([p for p in paths if p.exists()])
    course = load_from_files(lesson_files, quiz_files)
    catalogue_problems = check_catalogues() if data_dir is None else check_catalogues(data_dir)
    return (missing + [str(p) for p in course.problems] + [str(p) for p in authoring_problems(course)]
            + [str(p) for p in catalogue_problems])


def authoring_problems(course: Course) -> list[Problem]:
    """The authoring rules (course.authoring) on every lesson and quiz that loaded: long cards, giveaway lengths."""
    found = []
    for entry in course.entries:
        if entry.lesson is not None:
            found += [Problem(rel_path(entry.file), None, where, message)
                      for where, message in authoring.problems([entry.lesson], [])]
        if entry.quiz is not None and entry.quiz_file is not None:
            found += [Problem(rel_path(entry.quiz_file), None, where, message)
                      for where, message in authoring.problems([], [entry.quiz])]
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or [ROOT / "lessons", ROOT / "quizzes"]
    problems = validate(paths)
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s) found.", file=sys.stderr)
        return 1
    print("All content is valid.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
