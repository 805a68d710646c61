"""Validator CLI: `python -m course.validate [paths...]` (default: `lessons quizzes`; the catalogues under data/ always).

Prints every problem, one per line (file:line: field path: what was expected), and exits 1 if there are any.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course.catalogues import check_catalogues
from course.loader import ROOT, classify, load_from_files


def validate(paths: list[Path], data_dir: Path | None = None) -> list[str]:
    """Problems in the lesson and quiz files under `paths`, and in the catalogues lesson 9 prices runs against
    (data/accelerators.yaml, data/published_models.yaml; `data_dir` for tests)."""
    missing = [f"{p}: no such file or folder" for p in paths if not p.exists()]
    lesson_files, quiz_files = classify([p for p in paths if p.exists()])
    course = load_from_files(lesson_files, quiz_files)
    catalogue_problems = check_catalogues() if data_dir is None else check_catalogues(data_dir)
    return missing + [str(p) for p in course.problems] + [str(p) for p in catalogue_problems]


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
