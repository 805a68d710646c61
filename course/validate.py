"""Validator CLI: `python -m course.validate [paths...]` (default: `lessons quizzes`).

Prints every problem, one per line (file:line: field path: what was expected), and exits 1 if there are any.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course.loader import ROOT, classify, load_from_files


def validate(paths: list[Path]) -> list[str]:
    missing = [f"{p}: no such file or folder" for p in paths if not p.exists()]
    lesson_files, quiz_files = classify([p for p in paths if p.exists()])
    course = load_from_files(lesson_files, quiz_files)
    return missing + [str(p) for p in course.problems]


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
