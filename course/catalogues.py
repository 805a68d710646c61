"""The content validator's check of the cost lesson's catalogues: data/accelerators.yaml and data/published_models.yaml.

Lesson 9 prices runs against these rows, and they are edited by hand as prices and papers change, so
`python -m course.validate` checks them like lesson files: every row has every field (null where a figure was not
published), numbers are numbers (YAML reads `1.5e9` as text; `1.5e+9` is a number), ids are unique, every row
names its source, and a price carries its date. Each problem names the file, the line, the row and the field.

The engine reads the same files with its own strict reader (engine/cost/catalogue.py: it stays free of pydantic);
tests/course/test_catalogues.py checks the two agree on the fields.

>>> problems = [str(p) for p in check_accelerators("- id: x\\n  name: X\\n  kind: tpu\\n", "acc.yaml")]
>>> problems[0], problems[-1]
('acc.yaml:1: row 1 (x), field tflops_16bit: missing (write null if it was not published)', 'acc.yaml:1: row 1 (x), field kind: must be gpu or cpu')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import paths
from course import safe_yaml
from course.loader import MAX_PROBLEMS_PER_FILE, Problem

DATA_DIR = paths.DATA_DIR
ACCELERATORS = "accelerators.yaml"
PUBLISHED_MODELS = "published_models.yaml"

Figure = Field(ge=0)  # a published number: never negative
RowId = Field(pattern=r"^[a-z0-9_]{1,40}$")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    @field_validator("source", check_fields=False)
    @classmethod
    def _says_where_from(cls, v: str) -> str:
        if not v:
            raise ValueError("must say where the figures come from")
        return v


class AcceleratorRow(_Row):
    """One chip; the fields of engine.cost.catalogue.Accelerator."""

    id: str = RowId
    name: str = Field(min_length=1)
    kind: Literal["gpu", "cpu"]
    tflops_16bit: float | None = Figure
    tflops_fp32: float | None = Figure
    memory_gb: float | None = Figure
    power_w: float | None = Figure
    price_usd_per_hour: float | None = Figure
    price_date: str | None
    source: str
    note: str = ""

    @model_validator(mode="after")
    def _price_has_date(self) -> AcceleratorRow:
        if (self.price_usd_per_hour is None) != (self.price_date is None):
            raise ValueError("a price needs its price_date, and a date its price")
        return self


class PublishedModelRow(_Row):
    """One published model; the fields of engine.cost.catalogue.PublishedModel."""

    id: str = RowId
    name: str = Field(min_length=1)
    year: int = Field(ge=1950, le=2100)
    parameters: float = Field(gt=0)
    training_tokens: float | None = Figure
    training_flops: float | None = Figure
    energy_mwh: float | None = Figure
    co2_tonnes: float | None = Figure
    gpu_hours: float | None = Figure
    source: str
    note: str = ""


_OPTIONAL = {"note"}  # the one field a row may leave out; every figure must be written, as null if unpublished


def _row_lines(node: yaml.Node | None) -> list[int]:
    """The 1-based line each top-level row starts on (none where the YAML is not a list)."""
    if node is None or not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _check(text: str, filename: str, model: type[_Row], extra: Callable[[list[_Row]], list[str]] | None = None
           ) -> list[Problem]:
    try:
        raw, node = safe_yaml.parse(text)  # no alias bomb, no endless nesting, no crash on a bad scalar
    except safe_yaml.YamlRefused as err:
        return [Problem(filename, err.line, "", f"not valid YAML: {err.message}")]
    if not isinstance(raw, list) or not raw:
        return [Problem(filename, None, "", "must be a non-empty list of rows")]
    lines = _row_lines(node)
    problems: list[Problem] = []
    rows: list[tuple[int, _Row]] = []
    for i, item in enumerate(raw, start=1):
        line = lines[i - 1] if i - 1 < len(lines) else None
        rid = item.get("id") if isinstance(item, dict) else None
        where = f"row {i}" + (f" ({safe_yaml.printable(str(rid), 60)})" if rid else "")
        if not isinstance(item, dict):
            problems.append(Problem(filename, line, where, "each row must be a mapping of field: value"))
            continue
        for name, info in model.model_fields.items():
            if name not in item and name not in _OPTIONAL:
                nullable = "None" in str(info.annotation)
                problems.append(Problem(filename, line, f"{where}, field {name}",
                                        "missing (write null if it was not published)" if nullable else "missing"))
        try:
            rows.append((line or 0, model.model_validate({k: _number(model, k, v) for k, v in item.items()})))
        except ValidationError as err:
            for e in err.errors():
                field = safe_yaml.printable(".".join(str(p) for p in e["loc"]), 60) or "row"
                if e["type"] == "missing":
                    continue  # reported above, with the hint about null
                problems.append(Problem(filename, line, f"{where}, field {field}",
                                        safe_yaml.printable(_message(e, item), 300)))
    seen: set[str] = set()
    for line, row in rows:
        if row.id in seen:
            problems.append(Problem(filename, line, f"row ({row.id})", "duplicate id"))
        seen.add(row.id)
    if len(problems) > MAX_PROBLEMS_PER_FILE:
        more = len(problems) - MAX_PROBLEMS_PER_FILE
        problems = problems[:MAX_PROBLEMS_PER_FILE] + [
            Problem(filename, None, "", f"... and {more:,} more problems (fix these first)")]
    return problems


def _number(model: type[_Row], field: str, value: Any) -> Any:
    """An int becomes a float where the field holds a float: strict mode (which refuses the text "1.5e9" for a
    number, as the engine's reader does) would refuse 312 for a float field too."""
    info = model.model_fields.get(field)
    wants_float = info is not None and "float" in str(info.annotation)
    return float(value) if wants_float and isinstance(value, int) and not isinstance(value, bool) else value


def _message(error: dict[str, Any], item: dict[str, Any]) -> str:
    field = error["loc"][0] if error["loc"] else None
    value = item.get(field) if field else None
    if error["type"] == "literal_error" and field == "kind":
        return "must be gpu or cpu"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if isinstance(value, str) and error["type"] in ("float_type", "int_type"):
        hint = " (YAML reads 1.5e9 as text: write 1.5e+9)" if "e" in value.lower() else ""
        return f"expected a number, not {value!r}{hint}"
    return error["msg"].removeprefix("Value error, ")


def check_accelerators(text: str, filename: str = ACCELERATORS) -> list[Problem]:
    return _check(text, filename, AcceleratorRow)


def check_published_models(text: str, filename: str = PUBLISHED_MODELS) -> list[Problem]:
    return _check(text, filename, PublishedModelRow)


def check_catalogues(data_dir: Path = DATA_DIR) -> list[Problem]:
    """Every problem in both catalogue files (paths shown relative to the repository, like lesson files)."""
    problems: list[Problem] = []
    for name, check in ((ACCELERATORS, check_accelerators), (PUBLISHED_MODELS, check_published_models)):
        path = data_dir / name
        shown = f"data/{name}"
        try:
            text = safe_yaml.read_text(path)
        except safe_yaml.YamlRefused as err:  # missing, too big, not UTF-8
            problems.append(Problem(shown, err.line, "", f"cannot be read: {err.message}"))
            continue
        problems += check(text, shown)
    return problems
