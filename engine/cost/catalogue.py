"""The two reference catalogues behind the cost lesson: accelerators and published models, read from YAML.

`data/accelerators.yaml` lists chips (peak dense 16-bit and FP32 TFLOP/s, memory, power draw, an indicative
hourly cloud price with its date); `data/published_models.yaml` lists well-known trained models (parameters,
training tokens, reported compute, energy and emissions where the authors published them). Every row names its
`source:` (a datasheet, a paper, a model card); a figure that was not published is `null`, never a guess.

The reader is plain Python (no pydantic: the engine stays free of the course's schema machinery) and strict:
unknown fields, missing fields and wrong types raise a ValueError naming the file, the row and the field.

>>> [a.id for a in accelerators()][:3]
['a100_40gb', 'h100_sxm', 'h200']
>>> accelerator("h100_sxm").tflops_16bit
989.0
>>> model("gpt3_175b").training_flops
3.14e+23
"""

from __future__ import annotations

import functools
import re
import reprlib
from dataclasses import dataclass, fields
from typing import Any

import yaml

import paths

ACCELERATORS = paths.ACCELERATORS
PUBLISHED_MODELS = paths.PUBLISHED_MODELS
ID_PATTERN = re.compile(r"[a-z0-9_]{1,40}")  # use with fullmatch

# Values shown in messages: short even for an alias bomb (whose str() or repr() would never end).
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60


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


# field -> (allowed types, may be null)
_NUMBER = (int, float)
_ACCELERATOR_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), False), "name": ((str,), False), "kind": ((str,), False),
    "tflops_16bit": (_NUMBER, True), "tflops_fp32": (_NUMBER, True), "memory_gb": (_NUMBER, True),
    "power_w": (_NUMBER, True), "price_usd_per_hour": (_NUMBER, True), "price_date": ((str,), True),
    "source": ((str,), False), "note": ((str,), False),
}
_MODEL_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), False), "name": ((str,), False), "year": ((int,), False), "parameters": (_NUMBER, False),
    "training_tokens": (_NUMBER, True), "training_flops": (_NUMBER, True), "energy_mwh": (_NUMBER, True),
    "co2_tonnes": (_NUMBER, True), "gpu_hours": (_NUMBER, True), "source": ((str,), False),
    "note": ((str,), False),
}
_OPTIONAL = {"note"}  # may be left out altogether


def _safe_load(text: str, filename: str) -> Any:
    """`yaml.safe_load`, every way it can fail (a syntax error, nesting deep enough to exhaust recursion, a scalar
    PyYAML cannot construct such as `2020-13-45`) turned into a ValueError naming the file. Values go into messages
    through `reprlib.repr`, which stays short even for an alias bomb; `course.validate` refuses such files first."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{filename}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    except (RecursionError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as err:
        raise ValueError(f"{filename}: not readable YAML ({type(err).__name__}: {_SHORT.repr(str(err))}); "
                         "run python -m course.validate") from None


def _parse_rows(text: str, filename: str, spec: dict[str, tuple[tuple[type, ...], bool]]) -> list[dict[str, Any]]:
    """YAML list of mappings -> checked dicts (numbers as floats). ValueError names file, row and field.

    >>> _parse_rows("- {id: x, name: X, year: 2020, parameters: 1.0e+9, training_tokens: null, training_flops: null,"
    ...             " energy_mwh: null, co2_tonnes: null, gpu_hours: null, source: a paper}", "m.yaml", _MODEL_FIELDS)[0]["parameters"]
    1000000000.0
    >>> _parse_rows("- {id: x, name: X, year: 2020, parameters: 1.5e9}", "m.yaml", _MODEL_FIELDS)
    Traceback (most recent call last):
    ...
    ValueError: m.yaml, row 1 ('x'), field 'parameters': expected a number, not '1.5e9' (YAML reads 1.5e9 as text: write 1.5e+9)
    """
    raw = _safe_load(text, filename)
    if not isinstance(raw, list):
        raise ValueError(f"{filename}: must be a list of rows")
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"{filename}, row {i}: each row must be a mapping, not {_SHORT.repr(item)}")
        rid = item.get("id")

        def bad(field: str, why: str, i: int = i, rid: Any = rid) -> ValueError:
            return ValueError(f"{filename}, row {i} ({_SHORT.repr(rid)}), field {_SHORT.repr(field)}: {why}")

        for key in item:
            if key not in spec:
                raise bad(key, "unknown field")
        row: dict[str, Any] = {}
        for field, (types, nullable) in spec.items():
            if field not in item:
                if field in _OPTIONAL:
                    continue
                raise bad(field, "missing (write `null` if it was not published)" if nullable else "missing")
            value = item[field]
            if value is None:
                if not nullable:
                    raise bad(field, "must not be null")
            elif isinstance(value, bool) or not isinstance(value, types):
                kind = "a number" if types == _NUMBER else types[0].__name__
                hint = ""
                if types == _NUMBER and isinstance(value, str) and re.fullmatch(r"[0-9.]+[eE][0-9]+", value):
                    hint = " (YAML reads 1.5e9 as text: write 1.5e+9)"
                raise bad(field, f"expected {kind}, not {_SHORT.repr(value)}{hint}")
            elif types == _NUMBER:
                if value < 0:
                    raise bad(field, f"must not be negative, not {value!r}")
                value = float(value)
            row[field] = value
        if not ID_PATTERN.fullmatch(row["id"]) or row["id"] in {r["id"] for r in rows}:
            raise bad("id", "must be unique, 1-40 lowercase letters, digits or _")
        if not row["source"].strip():
            raise bad("source", "must say where the figures come from")
        rows.append(row)
    return rows


def parse_accelerators(text: str, filename: str = "accelerators.yaml") -> list[Accelerator]:
    """Accelerator YAML -> rows; a price needs its date, `kind` is gpu or cpu."""
    out = []
    for i, row in enumerate(_parse_rows(text, filename, _ACCELERATOR_FIELDS), start=1):
        where = f"{filename}, row {i} ({row['id']!r})"
        if row["kind"] not in ("gpu", "cpu"):
            raise ValueError(f"{where}, field 'kind': must be 'gpu' or 'cpu', not {row['kind']!r}")
        if (row["price_usd_per_hour"] is None) != (row["price_date"] is None):
            raise ValueError(f"{where}, field 'price_date': a price needs its date, and a date its price")
        out.append(Accelerator(**row))
    return out


def parse_published_models(text: str, filename: str = "published_models.yaml") -> list[PublishedModel]:
    """Published-models YAML -> rows."""
    rows = _parse_rows(text, filename, _MODEL_FIELDS)
    return [PublishedModel(**{f.name: row[f.name] for f in fields(PublishedModel) if f.name in row}) for row in rows]


@functools.cache
def accelerators() -> tuple[Accelerator, ...]:
    """Every row of data/accelerators.yaml, in file order (read once)."""
    return tuple(parse_accelerators(ACCELERATORS.read_text(encoding="utf-8"), ACCELERATORS.name))


@functools.cache
def published_models() -> tuple[PublishedModel, ...]:
    """Every row of data/published_models.yaml, in file order (read once)."""
    return tuple(parse_published_models(PUBLISHED_MODELS.read_text(encoding="utf-8"), PUBLISHED_MODELS.name))


def accelerator(accelerator_id: str) -> Accelerator:
    """One accelerator by id; KeyError lists the ids there are."""
    for a in accelerators():
        if a.id == accelerator_id:
            return a
    raise KeyError(f"no accelerator {accelerator_id!r}; known: {', '.join(a.id for a in accelerators())}")


def model(model_id: str) -> PublishedModel:
    """One published model by id; KeyError lists the ids there are."""
    for m in published_models():
        if m.id == model_id:
            return m
    raise KeyError(f"no published model {model_id!r}; known: {', '.join(m.id for m in published_models())}")
