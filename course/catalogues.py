"""The content validator's check of the project's data manifests: the corpora and the cost lesson's catalogues.

Lessons name corpora by their id in data/corpora.yaml, and lesson 9 prices runs against data/accelerators.yaml and
data/published_models.yaml; all three are edited by hand, so `python -m course.validate` checks them like lesson
files. The rules (every field present, `null` where a figure was not published, numbers that are numbers, unique
ids, a source on every row, a price with its date, a corpus file that stays inside data/) live once in the
top-level `manifests` module, which the engine reads the same files through. What is left here is the course's
part: reading a hostile file safely (course.safe_yaml), finding each problem's line, and saying it as a `Problem`.

>>> problems = [str(p) for p in check_accelerators("- id: x\\n  name: X\\n  kind: tpu\\n", "acc.yaml")]
>>> problems[0], problems[-1]
('acc.yaml:1: row 1 (x), field tflops_16bit: missing (write null if it was not published)', 'acc.yaml:1: row 1 (x), field kind: must be gpu or cpu')
"""

from __future__ import annotations

from pathlib import Path

import yaml

import manifests
import paths
from course import safe_yaml
from course.loader import MAX_PROBLEMS_PER_FILE, Problem

DATA_DIR = paths.DATA_DIR
ACCELERATORS = manifests.ACCELERATORS.name
PUBLISHED_MODELS = manifests.PUBLISHED_MODELS.name
CORPORA = manifests.CORPORA.name


def _row_lines(node: yaml.Node | None) -> list[int]:
    """The 1-based line each top-level row starts on (none where the YAML is not a list)."""
    if node is None or not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _where(problem: manifests.RowProblem) -> str:
    """`row 2 (h100_sxm), field price_date`: the row, its id when it has one, and the field."""
    if problem.row is None:
        return ""
    rid = problem.row_id
    where = f"row {problem.row}"
    if rid is not None and rid != "":
        where += f" ({safe_yaml.printable(rid if isinstance(rid, str) else manifests.short(rid), 60)})"
    return where + (f", field {safe_yaml.printable(problem.field, 60)}" if problem.field is not None else "")


def check(manifest: manifests.Manifest, text: str, filename: str) -> list[Problem]:
    """Every problem in one manifest's text, each with its file, line, row and field."""
    try:
        data, node = safe_yaml.parse(text)  # no alias bomb, no endless nesting, no crash on a bad scalar
    except safe_yaml.YamlRefused as err:
        return [Problem(filename, err.line, "", f"not valid YAML: {err.message}")]
    lines = _row_lines(node)
    problems = [Problem(filename, lines[p.row - 1] if p.row is not None and p.row <= len(lines) else None,
                        _where(p), safe_yaml.printable(p.message, 300))
                for p in manifest.problems(data)]
    if len(problems) > MAX_PROBLEMS_PER_FILE:
        more = len(problems) - MAX_PROBLEMS_PER_FILE
        problems = problems[:MAX_PROBLEMS_PER_FILE] + [
            Problem(filename, None, "", f"... and {more:,} more problems (fix these first)")]
    return problems


def check_accelerators(text: str, filename: str = ACCELERATORS) -> list[Problem]:
    return check(manifests.ACCELERATORS, text, filename)


def check_published_models(text: str, filename: str = PUBLISHED_MODELS) -> list[Problem]:
    return check(manifests.PUBLISHED_MODELS, text, filename)


def check_corpora(text: str, filename: str = CORPORA) -> list[Problem]:
    return check(manifests.CORPORA, text, filename)


def check_catalogues(data_dir: Path = DATA_DIR) -> list[Problem]:
    """Every problem in the catalogues and the corpus manifest (paths shown relative to the repository, like lesson
    files)."""
    problems: list[Problem] = []
    for manifest in (manifests.ACCELERATORS, manifests.PUBLISHED_MODELS, manifests.CORPORA):
        shown = f"data/{manifest.name}"
        try:
            text = safe_yaml.read_text(data_dir / manifest.name)
        except safe_yaml.YamlRefused as err:  # missing, too big, not UTF-8
            problems.append(Problem(shown, err.line, "", f"cannot be read: {err.message}"))
            continue
        problems += check(manifest, text, shown)
    return problems
