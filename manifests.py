"""The project's own data manifests: corpora, accelerators, published models, read safely into plain frozen dataclasses.

`data/corpora.yaml` lists the corpora a lesson may name; `data/accelerators.yaml` and `data/published_models.yaml`
are the cost lesson's catalogues. The engine loads them and the content validator checks them, and those two layers
never import each other, so the rows and every rule about them live here once, beside `paths.py` (standard library,
PyYAML and `paths` only). `Manifest.problems` reports every problem of a file as a `RowProblem` (row, id, field,
message) for `course.catalogues` to list with their lines; `parse` and `read`, the engine's entry points, raise a
ValueError naming the file, the row and the field of the first. Refusing a hostile file before it is parsed is
`course.safe_yaml`'s job; here every failure of `yaml.safe_load` is a ValueError too, its values kept short (reprlib).

>>> [c.id for c in CORPORA.read()]
['tinyshakespeare', 'python_stdlib', 'web_crawl']
>>> [p.message for p in ACCELERATORS.problems([{"id": "x", "name": "X", "kind": "tpu"}])][-1]
'must be gpu or cpu'
"""

from __future__ import annotations

import datetime
import math
import re
import reprlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

import paths

ID_PATTERN = re.compile(r"[a-z0-9_]{1,40}")  # use with fullmatch
CORPUS_KINDS = ("prose", "code", "web")
CORPUS_SPLITS = ("paragraphs", "files", "crawl")  # how a corpus's text splits into documents
ACCELERATOR_KINDS = ("gpu", "cpu")

# Values shown in messages: short even for an alias bomb (whose str() or repr() would never end).
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60
_SHORT.maxlong = 40


def short(value: Any) -> str:
    """A value as it may appear in a message: `repr`, cut short.

    >>> short("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
    """
    return _SHORT.repr(value)


@dataclass(frozen=True)
class BundledCorpus:
    """One corpus of data/corpora.yaml. `file` is None for a generated corpus (the web crawl)."""

    id: str
    title: str
    description: str
    file: str | None  # a plain file name inside data/
    kind: str  # "prose" | "code" | "web"
    split: str  # how its text splits into documents: "paragraphs" | "files" | "crawl"
    source: str  # where it came from, in one line
    generated: bool = False  # built by engine code (engine/extract/crawl.py) rather than read from a file

    @property
    def path(self) -> Path | None:
        return None if self.file is None else paths.DATA_DIR / self.file


@dataclass(frozen=True)
class Accelerator:
    """One chip. TFLOP/s are dense peaks from the vendor (no 2:4 sparsity); `None` = not published."""

    id: str
    name: str
    kind: str  # "gpu" | "cpu"
    tflops_16bit: float | None  # peak dense BF16 (FP16 where the chip has no BF16) tensor throughput
    tflops_fp32: float | None  # peak FP32 (non-tensor) throughput
    memory_gb: float | None
    power_w: float | None  # board power / TDP: what the cost of energy is worked out from
    price_usd_per_hour: float | None  # an indicative on-demand cloud price for one chip; None = none recorded
    price_date: str | None  # when that price was listed (prices move: it is an example, not a quote)
    source: str
    note: str = ""


@dataclass(frozen=True)
class PublishedModel:
    """One trained model as its authors reported it; `None` = the authors did not publish that figure."""

    id: str
    name: str
    year: int
    parameters: float
    training_tokens: float | None
    training_flops: float | None
    energy_mwh: float | None
    co2_tonnes: float | None
    gpu_hours: float | None
    source: str
    note: str = ""


class RowProblem(NamedTuple):
    """One problem in a manifest: `row` is 1-based (None for the whole file), `row_id` the row's raw `id` value."""

    row: int | None
    row_id: Any
    field: str | None
    message: str


_NUMBER, _TEXT, _WHOLE, _FLAG = (int, float), (str,), (int,), (bool,)
_EXPECTED = {_NUMBER: "a number", _TEXT: "text", _WHOLE: "a whole number", _FLAG: "true or false"}
_TEXT_NUMBER = re.compile(r"[-+]?[0-9][0-9_.]*[eE][-+]?[0-9]+")  # YAML 1.1 reads 1.5e9 and 1e+9 as text
Rule = Callable[[dict[str, Any]], Iterator[tuple[str, str]]]


@dataclass(frozen=True)
class Manifest:
    """One data file: its row type, each field's types (and whether it may be `null`), and its own rules."""

    name: str  # the file name, as messages give it
    path: Path
    row: type
    spec: dict[str, tuple[tuple[type, ...], bool]]  # field -> (allowed types, may be null)
    optional: dict[str, Any]  # field -> its value when a row leaves it out
    rules: Rule  # checks across fields, run on the fields that passed their own checks
    source_why: str  # what `source:` must say

    def problems(self, data: Any) -> list[RowProblem]:
        """Every problem in the file's loaded YAML (in file order, row by row), [] for a good file."""
        return self._check(data)[1]

    def rows(self, data: Any, filename: str | None = None) -> list[Any]:
        """The loaded YAML as rows; ValueError on the first problem, naming the file, the row and the field."""
        rows, problems = self._check(data)
        if problems:
            raise ValueError(describe(problems[0], filename or self.name))
        return [self.row(**row) for row in rows]

    def parse(self, text: str, filename: str | None = None) -> list[Any]:
        """YAML text -> rows (strict: see `rows`)."""
        return self.rows(load_yaml(text, filename or self.name), filename)

    def read(self, path: Path | None = None) -> list[Any]:
        """The rows of the file at `path` (the project's own by default), strict."""
        path = path or self.path
        return self.parse(path.read_text(encoding="utf-8"), path.name)

    def _check(self, data: Any) -> tuple[list[dict[str, Any]], list[RowProblem]]:
        if not isinstance(data, list):
            return [], [RowProblem(None, None, None, "must be a list of rows")]
        if not data:
            return [], [RowProblem(None, None, None, "must be a list of rows, not empty")]
        rows: list[dict[str, Any]] = []
        problems: list[RowProblem] = []
        first_row_of: dict[str, int] = {}
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                problems.append(RowProblem(i, None, None, "each row must be a mapping of field: value"))
                continue
            found = list(self._check_row(item, first_row_of, i))
            problems += [RowProblem(i, item.get("id"), field, message) for field, message in found]
            if not found:
                rows.append({**self.optional, **{k: _as_read(item[k], self.spec[k][0]) for k in item}})
        return rows, problems

    def _check_row(self, item: dict[Any, Any], first_row_of: dict[str, int], i: int) -> Iterator[tuple[str, str]]:
        """(field, message) for each problem of one row: unknown fields, each field alone, the id, the rules."""
        for key in item:
            if key not in self.spec:
                yield (key if isinstance(key, str) else short(key)), "unknown field"
        good: dict[str, Any] = {}
        for field, (types, nullable) in self.spec.items():
            if field not in item:
                if field in self.optional:
                    good[field] = self.optional[field]
                else:
                    yield field, "missing (write null if it was not published)" if nullable else "missing"
                continue
            why = _wrong_value(item[field], types, nullable)
            if why:
                yield field, why
            else:
                good[field] = item[field]
        rid = good.get("id")
        if rid is not None:
            if not ID_PATTERN.fullmatch(rid):
                yield "id", "must be 1-40 lowercase letters, digits or _"
            elif rid in first_row_of:
                yield "id", f"duplicate id (row {first_row_of[rid]} has it too)"
            else:
                first_row_of[rid] = i
        for field in ("name", "title", "description"):
            if isinstance(good.get(field), str) and not good[field].strip():
                yield field, "must not be empty"
        if isinstance(good.get("source"), str) and not good["source"].strip():
            yield "source", self.source_why
        yield from self.rules(good)


def _wrong_value(value: Any, types: tuple[type, ...], nullable: bool) -> str | None:
    """Why one field's value is wrong on its own (None if it is right).

    >>> _wrong_value("1.5e9", _NUMBER, True)
    "expected a number, not '1.5e9' (YAML reads 1.5e9 as text: write 1.5e+9)"
    """
    if value is None:
        return None if nullable else "must not be null"
    if not isinstance(value, types) or (isinstance(value, bool) and types is not _FLAG):
        hint = ""
        if types is _NUMBER and isinstance(value, str) and _TEXT_NUMBER.fullmatch(value.strip()):
            hint = " (YAML reads 1.5e9 as text: write 1.5e+9)"
        elif types is _TEXT and isinstance(value, datetime.date):
            hint = " (YAML reads it as a date: put it in quotes)"
        return f"expected {_EXPECTED[types]}, not {short(value)}{hint}"
    if types is _NUMBER:
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            return f"must be a finite number, not {short(value)}"
        if value < 0:
            return f"must not be negative, not {short(value)}"
    return None


def _as_read(value: Any, types: tuple[type, ...]) -> Any:
    """A checked value as its row holds it: numbers as floats (a whole number is a number too)."""
    return float(value) if types is _NUMBER and value is not None else value


def _corpus_rules(row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "file" in row and "generated" in row:
        file = row["file"]
        if (file is None) == (row["generated"] is not True):
            yield "file", "give either `file` or `generated: true`"
        elif file is not None and (not file or Path(file).name != file or file.startswith(".")
                                   or "\\" in file or "\x00" in file):
            yield "file", f"must be a plain file name in data/, not {short(file)}"
    if row.get("kind", CORPUS_KINDS[0]) not in CORPUS_KINDS:
        yield "kind", f"must be one of {', '.join(CORPUS_KINDS)}, not {short(row['kind'])}"
    if row.get("split", CORPUS_SPLITS[0]) not in CORPUS_SPLITS:
        yield "split", f"must be one of {', '.join(CORPUS_SPLITS)}, not {short(row['split'])}"


def _accelerator_rules(row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if row.get("kind", ACCELERATOR_KINDS[0]) not in ACCELERATOR_KINDS:
        yield "kind", "must be gpu or cpu"
    if "price_usd_per_hour" in row and "price_date" in row and (
            (row["price_usd_per_hour"] is None) != (row["price_date"] is None)):
        yield "price_date", "a price needs its price_date, and a date its price"


def _model_rules(row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "year" in row and not 1950 <= row["year"] <= 2100:
        yield "year", f"must be a year between 1950 and 2100, not {short(row['year'])}"
    if "parameters" in row and row["parameters"] == 0:
        yield "parameters", "must be more than 0"


CORPORA = Manifest(
    "corpora.yaml", paths.CORPORA_MANIFEST, BundledCorpus,
    {"id": (_TEXT, False), "title": (_TEXT, False), "description": (_TEXT, False), "file": (_TEXT, True),
     "generated": (_FLAG, False), "kind": (_TEXT, False), "split": (_TEXT, False), "source": (_TEXT, False)},
    {"file": None, "generated": False}, _corpus_rules, "must say where the text comes from")
ACCELERATORS = Manifest(
    "accelerators.yaml", paths.ACCELERATORS, Accelerator,
    {"id": (_TEXT, False), "name": (_TEXT, False), "kind": (_TEXT, False),
     "tflops_16bit": (_NUMBER, True), "tflops_fp32": (_NUMBER, True), "memory_gb": (_NUMBER, True),
     "power_w": (_NUMBER, True), "price_usd_per_hour": (_NUMBER, True), "price_date": (_TEXT, True),
     "source": (_TEXT, False), "note": (_TEXT, False)},
    {"note": ""}, _accelerator_rules, "must say where the figures come from")
PUBLISHED_MODELS = Manifest(
    "published_models.yaml", paths.PUBLISHED_MODELS, PublishedModel,
    {"id": (_TEXT, False), "name": (_TEXT, False), "year": (_WHOLE, False), "parameters": (_NUMBER, False),
     "training_tokens": (_NUMBER, True), "training_flops": (_NUMBER, True), "energy_mwh": (_NUMBER, True),
     "co2_tonnes": (_NUMBER, True), "gpu_hours": (_NUMBER, True), "source": (_TEXT, False),
     "note": (_TEXT, False)},
    {"note": ""}, _model_rules, "must say where the figures come from")
MANIFESTS = {m.name: m for m in (CORPORA, ACCELERATORS, PUBLISHED_MODELS)}  # by file name


def find(rows: Iterable[Any], row_id: str, what: str) -> Any:
    """The row of `rows` whose id is `row_id`; a KeyError naming `what` and the ids there are otherwise.

    >>> find(CORPORA.read(), "tinyshakespeare", "corpus").title
    'Tiny Shakespeare'
    >>> find([], "x", "accelerator")
    Traceback (most recent call last):
    ...
    KeyError: "unknown accelerator 'x'; known: "
    """
    rows = list(rows)
    for row in rows:
        if row.id == row_id:
            return row
    raise KeyError(f"unknown {what} {row_id!r}; known: {', '.join(r.id for r in rows)}")


def describe(problem: RowProblem, filename: str) -> str:
    """One problem as the engine's ValueError says it.

    >>> describe(RowProblem(2, "m", "parameters", "must be more than 0"), "published_models.yaml")
    "published_models.yaml, row 2 ('m'), field 'parameters': must be more than 0"
    """
    where = filename
    if problem.row is not None:
        where += f", row {problem.row}" + (f" ({short(problem.row_id)})" if problem.row_id is not None else "")
    if problem.field is not None:
        where += f", field {short(problem.field)}"
    return f"{where}: {problem.message}"


def load_yaml(text: str, filename: str) -> Any:
    """`yaml.safe_load`, every way it can fail (a syntax error, nesting deep enough to exhaust recursion, a scalar
    PyYAML cannot construct such as `2020-13-45`) turned into a ValueError naming the file.

    >>> load_yaml("- [unclosed", "a.yaml")
    Traceback (most recent call last):
    ...
    ValueError: a.yaml: not valid YAML: expected ',' or ']', but got '<stream end>'
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{filename}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    except (RecursionError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as err:
        raise ValueError(f"{filename}: not readable YAML ({type(err).__name__}: {short(str(err))}); "
                         "run python -m course.validate") from None
