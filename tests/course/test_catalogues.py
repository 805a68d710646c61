"""The content validator's check of data/accelerators.yaml and data/published_models.yaml (course.catalogues)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from course.catalogues import (
    AcceleratorRow,
    PublishedModelRow,
    check_accelerators,
    check_catalogues,
    check_published_models,
)
from course.validate import validate
from engine.cost.catalogue import Accelerator, PublishedModel

MODEL = ("- id: m\n  name: M\n  year: 2020\n  parameters: 1.0e+9\n  training_tokens: 2.0e+10\n"
         "  training_flops: null\n  energy_mwh: null\n  co2_tonnes: null\n  gpu_hours: null\n  source: a paper\n")


def test_the_shipped_catalogues_are_valid() -> None:
    assert check_catalogues() == []


def test_course_schema_and_engine_reader_agree_on_the_fields() -> None:
    """Two readers of one file (the engine stays free of pydantic): a field added to one must be added to both."""
    assert set(AcceleratorRow.model_fields) == {f.name for f in dataclasses.fields(Accelerator)}
    assert set(PublishedModelRow.model_fields) == {f.name for f in dataclasses.fields(PublishedModel)}


def test_a_good_row_passes_and_each_mistake_is_named_with_file_line_row_and_field() -> None:
    assert check_published_models(MODEL, "m.yaml") == []
    second = MODEL.replace("id: m", "id: n").replace("1.0e+9", "1.5e9").replace("source: a paper", "source: ''")
    problems = [str(p) for p in check_published_models(MODEL + second, "m.yaml")]
    assert "m.yaml:11: row 2 (n), field parameters: expected a number, not '1.5e9' (YAML reads 1.5e9 as text: " \
           "write 1.5e+9)" in problems
    assert "m.yaml:11: row 2 (n), field source: must say where the figures come from" in problems
    assert len(problems) == 2


def test_missing_figures_unknown_fields_duplicates_and_prices_without_dates() -> None:
    dup = [str(p) for p in check_published_models(MODEL + MODEL, "m.yaml")]
    assert dup == ["m.yaml:11: row (m): duplicate id"]
    no_tokens = [str(p) for p in check_published_models(MODEL.replace("  training_tokens: 2.0e+10\n", "")
                                                        + "  extra: 1\n", "m.yaml")]
    assert "m.yaml:1: row 1 (m), field training_tokens: missing (write null if it was not published)" in no_tokens
    assert "m.yaml:1: row 1 (m), field extra: unknown field" in no_tokens
    chip = ("- id: c\n  name: C\n  kind: gpu\n  tflops_16bit: 100\n  tflops_fp32: 10\n  memory_gb: 16\n"
            "  power_w: 300\n  price_usd_per_hour: 1.5\n  price_date: null\n  source: datasheet\n")
    assert [str(p) for p in check_accelerators(chip, "a.yaml")] == [
        "a.yaml:1: row 1 (c), field row: a price needs its price_date, and a date its price"]
    assert check_accelerators(chip.replace("price_date: null", "price_date: '2024'"), "a.yaml") == []


def test_broken_files_give_a_message_not_a_crash(tmp_path: Path) -> None:
    assert "not valid YAML" in str(check_accelerators("- id: [", "a.yaml")[0])
    assert "non-empty list" in str(check_accelerators("id: x", "a.yaml")[0])
    (tmp_path / "accelerators.yaml").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "published_models.yaml").write_text("- 1\n")
    problems = [str(p) for p in check_catalogues(tmp_path)]
    assert problems[0].startswith("data/accelerators.yaml: cannot be read")
    assert problems[1] == "data/published_models.yaml:1: row 1: each row must be a mapping of field: value"


def test_the_validator_cli_reports_catalogue_problems(tmp_path: Path) -> None:
    (tmp_path / "accelerators.yaml").write_text("[]")
    (tmp_path / "published_models.yaml").write_text(MODEL)
    root = Path(__file__).resolve().parents[2]
    assert validate([root / "lessons", root / "quizzes"], data_dir=tmp_path) == [
        "data/accelerators.yaml: must be a non-empty list of rows"]
