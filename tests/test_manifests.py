"""manifests.py: the one reader of data/corpora.yaml, data/accelerators.yaml and data/published_models.yaml.

The fields it knows are the ones the shipped files use; each rule gives its message on a constructed row; every
problem of a file comes back at once, in file order, and the strict entry point raises the first; a file that
`yaml.safe_load` cannot read, or an alias bomb, is a short ValueError naming the file.
"""

from __future__ import annotations

import dataclasses
import doctest
import time

import pytest
import yaml

import manifests
from manifests import ACCELERATORS, CORPORA, PUBLISHED_MODELS, RowProblem

CHIP = {"id": "c", "name": "C", "kind": "gpu", "tflops_16bit": 100, "tflops_fp32": 10.5, "memory_gb": 16,
        "power_w": 300, "price_usd_per_hour": 1.5, "price_date": "2024", "source": "a datasheet"}
MODEL = {"id": "m", "name": "M", "year": 2020, "parameters": 1.0e9, "training_tokens": 2.0e10, "training_flops": None,
         "energy_mwh": None, "co2_tonnes": None, "gpu_hours": None, "source": "a paper"}
CORPUS = {"id": "x", "title": "X", "description": "d", "file": "x.txt", "kind": "prose", "split": "paragraphs",
          "source": "s"}


def test_docstring_examples_run() -> None:
    assert doctest.testmod(manifests).failed == 0


@pytest.mark.parametrize("manifest", manifests.MANIFESTS.values(), ids=list(manifests.MANIFESTS))
def test_the_fields_are_the_ones_the_shipped_files_use(manifest: manifests.Manifest) -> None:
    """One list of fields per file: the checks, the row dataclass and the file itself name the same ones."""
    assert set(manifest.spec) == {f.name for f in dataclasses.fields(manifest.row)}
    rows = yaml.safe_load(manifest.path.read_text(encoding="utf-8"))
    assert set().union(*rows) == set(manifest.spec), manifest.name
    for row in rows:
        assert set(manifest.spec) - set(row) <= set(manifest.optional), row["id"]
    assert manifest.problems(rows) == []


def test_the_shipped_files_read_into_rows() -> None:
    chips, models, corpora = ACCELERATORS.read(), PUBLISHED_MODELS.read(), CORPORA.read()
    assert all(isinstance(c, manifests.Accelerator) and c.kind in ("gpu", "cpu") for c in chips)
    assert all(isinstance(m.parameters, float) and isinstance(m.year, int) for m in models)
    assert [c.id for c in corpora] == ["tinyshakespeare", "python_stdlib", "web_crawl"]
    assert [c.path.name for c in corpora if c.path] == ["tinyshakespeare.txt", "python_stdlib_sample.txt"]
    assert [c.id for c in corpora if c.generated] == ["web_crawl"]


def _one(manifest: manifests.Manifest, row: dict) -> tuple[str | None, str]:
    problems = manifest.problems([row])
    assert len(problems) == 1, problems
    return problems[0].field, problems[0].message


@pytest.mark.parametrize(
    ("manifest", "good", "edit", "field", "message"),
    [
        (PUBLISHED_MODELS, MODEL, {"parameters": "1.5e9"}, "parameters",
         "expected a number, not '1.5e9' (YAML reads 1.5e9 as text: write 1.5e+9)"),
        (PUBLISHED_MODELS, MODEL, {"training_tokens": "<del>"}, "training_tokens",
         "missing (write null if it was not published)"),
        (PUBLISHED_MODELS, MODEL, {"source": "<del>"}, "source", "missing"),
        (PUBLISHED_MODELS, MODEL, {"parameters": None}, "parameters", "must not be null"),
        (PUBLISHED_MODELS, MODEL, {"parameters": 0}, "parameters", "must be more than 0"),
        (PUBLISHED_MODELS, MODEL, {"year": 2020.5}, "year", "expected a whole number, not 2020.5"),
        (PUBLISHED_MODELS, MODEL, {"year": True}, "year", "expected a whole number, not True"),
        (PUBLISHED_MODELS, MODEL, {"year": 1066}, "year", "must be a year between 1950 and 2100, not 1066"),
        (PUBLISHED_MODELS, MODEL, {"energy_mwh": -1}, "energy_mwh", "must not be negative, not -1"),
        (PUBLISHED_MODELS, MODEL, {"energy_mwh": float("nan")}, "energy_mwh", "must be a finite number, not nan"),
        (PUBLISHED_MODELS, MODEL, {"gpu_hours": 10**400}, "gpu_hours",
         "must be a finite number, not 1" + "0" * 17 + "..." + "0" * 19),
        (PUBLISHED_MODELS, MODEL, {"source": "  "}, "source", "must say where the figures come from"),
        (PUBLISHED_MODELS, MODEL, {"name": ""}, "name", "must not be empty"),
        (PUBLISHED_MODELS, MODEL, {"colour": "red"}, "colour", "unknown field"),
        (PUBLISHED_MODELS, MODEL, {1: "one"}, "1", "unknown field"),
        (ACCELERATORS, CHIP, {"kind": "tpu"}, "kind", "must be gpu or cpu"),
        (ACCELERATORS, CHIP, {"price_date": None}, "price_date", "a price needs its price_date, and a date its price"),
        (ACCELERATORS, CHIP, {"price_usd_per_hour": None}, "price_date",
         "a price needs its price_date, and a date its price"),
        (ACCELERATORS, CHIP, {"price_date": 2024}, "price_date", "expected text, not 2024"),
        (ACCELERATORS, CHIP, {"id": "H100"}, "id", "must be 1-40 lowercase letters, digits or _"),
        (CORPORA, CORPUS, {"file": "../x.txt"}, "file", "must be a plain file name in data/, not '../x.txt'"),
        (CORPORA, CORPUS, {"file": "a\\b.txt"}, "file", "must be a plain file name in data/, not 'a\\\\b.txt'"),
        (CORPORA, CORPUS, {"file": ".env"}, "file", "must be a plain file name in data/, not '.env'"),
        (CORPORA, CORPUS, {"file": "<del>"}, "file", "give either `file` or `generated: true`"),
        (CORPORA, CORPUS, {"generated": True}, "file", "give either `file` or `generated: true`"),
        (CORPORA, CORPUS, {"generated": "yes please"}, "generated", "expected true or false, not 'yes please'"),
        (CORPORA, CORPUS, {"kind": "poem"}, "kind", "must be one of prose, code, web, not 'poem'"),
        (CORPORA, CORPUS, {"split": "lines"}, "split", "must be one of paragraphs, files, crawl, not 'lines'"),
        (CORPORA, CORPUS, {"source": ""}, "source", "must say where the text comes from"),
    ],
)
def test_each_rule_names_its_field(manifest, good, edit, field, message) -> None:
    assert manifest.problems([good]) == []
    row = dict(good)
    for key, value in edit.items():
        if value == "<del>":
            del row[key]
        else:
            row[key] = value
    assert _one(manifest, row) == (field, message)


def test_good_rows_become_dataclasses_with_numbers_as_floats() -> None:
    chip = ACCELERATORS.rows([CHIP])[0]
    assert chip.tflops_16bit == 100.0 and isinstance(chip.tflops_16bit, float) and chip.note == ""
    assert CORPORA.rows([{**CORPUS, "file": None, "generated": True, "kind": "web", "split": "crawl"}])[0].path is None
    assert CORPORA.rows([CORPUS])[0].path == manifests.paths.DATA_DIR / "x.txt"


def test_every_problem_at_once_in_file_order_and_the_strict_reader_raises_the_first() -> None:
    rows = [MODEL, {**MODEL, "parameters": "1.5e9", "source": ""}, 7, dict(MODEL)]
    assert PUBLISHED_MODELS.problems(rows) == [
        RowProblem(2, "m", "parameters", "expected a number, not '1.5e9' (YAML reads 1.5e9 as text: write 1.5e+9)"),
        RowProblem(2, "m", "id", "duplicate id (row 1 has it too)"),
        RowProblem(2, "m", "source", "must say where the figures come from"),
        RowProblem(3, None, None, "each row must be a mapping of field: value"),
        RowProblem(4, "m", "id", "duplicate id (row 1 has it too)"),
    ]
    with pytest.raises(ValueError) as info:
        PUBLISHED_MODELS.rows(rows, "m.yaml")
    assert str(info.value) == ("m.yaml, row 2 ('m'), field 'parameters': expected a number, not '1.5e9' "
                               "(YAML reads 1.5e9 as text: write 1.5e+9)")
    assert PUBLISHED_MODELS.problems({"id": "m"}) == [RowProblem(None, None, None, "must be a list of rows")]
    assert PUBLISHED_MODELS.problems([]) == [RowProblem(None, None, None, "must be a list of rows, not empty")]


CHAIN = "&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol], " + ", ".join(
    f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9))  # 10**9 values from one line


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("- [unclosed\n", "accelerators.yaml: not valid YAML"),
        ("- " + "[" * 600 + "]" * 600 + "\n", "accelerators.yaml: not readable YAML (RecursionError"),
        ("- {id: x, price_date: 2020-13-45}\n", "accelerators.yaml: not readable YAML (ValueError"),
        ("- {id: !!int junk}\n", "accelerators.yaml: not readable YAML (ValueError"),
        ("- [" + CHAIN + "]\n", "accelerators.yaml, row 1: each row must be a mapping"),
        ("- {id: x, name: X, kind: gpu, tflops_16bit: [" + CHAIN + "]}\n",
         "accelerators.yaml, row 1 ('x'), field 'tflops_16bit': expected a number, not [['lol', "),
        ("- {id: [" + CHAIN + "]}\n", "accelerators.yaml, row 1 ([['lol', 'lol', 'lol', 'lol', ...], [[...], "),
        ("text\n", "accelerators.yaml: must be a list of rows"),
    ],
)
def test_unreadable_and_hostile_text_is_a_short_error_naming_the_file(text: str, words: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError) as info:
        ACCELERATORS.parse(text)
    assert time.perf_counter() - started < 20.0  # a wall only an expanded alias chain reaches, not a speed check
    assert str(info.value).startswith(words) and len(str(info.value)) < 400, str(info.value)
