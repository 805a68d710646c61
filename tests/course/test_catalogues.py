"""The content validator's check of the data manifests (course.catalogues): the cost catalogues and the corpora.

The rules themselves are tested in tests/test_manifests.py; here, that each problem is said with its file, line, row
and field, all at once, and that `python -m course.validate` reports them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from course.catalogues import check_accelerators, check_catalogues, check_corpora, check_published_models
from course.validate import validate

MODEL = ("- id: m\n  name: M\n  year: 2020\n  parameters: 1.0e+9\n  training_tokens: 2.0e+10\n"
         "  training_flops: null\n  energy_mwh: null\n  co2_tonnes: null\n  gpu_hours: null\n  source: a paper\n")


def test_the_shipped_catalogues_are_valid() -> None:
    assert check_catalogues() == []


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
    assert dup == ["m.yaml:11: row 2 (m), field id: duplicate id (row 1 has it too)"]
    no_tokens = [str(p) for p in check_published_models(MODEL.replace("  training_tokens: 2.0e+10\n", "")
                                                        + "  extra: 1\n", "m.yaml")]
    assert "m.yaml:1: row 1 (m), field training_tokens: missing (write null if it was not published)" in no_tokens
    assert "m.yaml:1: row 1 (m), field extra: unknown field" in no_tokens
    chip = ("- id: c\n  name: C\n  kind: gpu\n  tflops_16bit: 100\n  tflops_fp32: 10\n  memory_gb: 16\n"
            "  power_w: 300\n  price_usd_per_hour: 1.5\n  price_date: null\n  source: datasheet\n")
    assert [str(p) for p in check_accelerators(chip, "a.yaml")] == [
        "a.yaml:1: row 1 (c), field price_date: a price needs its price_date, and a date its price"]
    assert check_accelerators(chip.replace("price_date: null", "price_date: '2024'"), "a.yaml") == []


def test_broken_files_give_a_message_not_a_crash(tmp_path: Path) -> None:
    assert "not valid YAML" in str(check_accelerators("- id: [", "a.yaml")[0])
    assert str(check_accelerators("id: x", "a.yaml")[0]) == "a.yaml: must be a list of rows"
    (tmp_path / "accelerators.yaml").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "published_models.yaml").write_text("- 1\n")
    problems = [str(p) for p in check_catalogues(tmp_path)]
    assert problems[0].startswith("data/accelerators.yaml: cannot be read")
    assert problems[1] == "data/published_models.yaml:1: row 1: each row must be a mapping of field: value"


def test_the_validator_cli_reports_catalogue_problems(tmp_path: Path) -> None:
    (tmp_path / "accelerators.yaml").write_text("[]")
    (tmp_path / "published_models.yaml").write_text(MODEL)
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "data" / "corpora.yaml", tmp_path)
    assert validate([root / "lessons", root / "quizzes"], data_dir=tmp_path) == [
        "data/accelerators.yaml: must be a list of rows, not empty"]
    (tmp_path / "corpora.yaml").write_text("- {id: web, title: W, description: d, kind: web, split: crawl, source: s}\n")
    assert validate([root / "lessons", root / "quizzes"], data_dir=tmp_path)[-1] == (
        "data/corpora.yaml:1: row 1 (web), field file: give either `file` or `generated: true`")


def test_every_problem_of_the_corpus_manifest_at_once() -> None:
    text = ("- id: a\n  title: A\n  description: d\n  file: ../a.txt\n  kind: poem\n  split: paragraphs\n"
            "  source: s\n- id: a\n  title: ''\n  description: d\n  generated: true\n  kind: web\n  split: crawl\n"
            "  source: s\n  url: u\n")
    assert [str(p) for p in check_corpora(text, "c.yaml")] == [
        "c.yaml:1: row 1 (a), field file: must be a plain file name in data/, not '../a.txt'",
        "c.yaml:1: row 1 (a), field kind: must be one of prose, code, web, not 'poem'",
        "c.yaml:8: row 2 (a), field url: unknown field",
        "c.yaml:8: row 2 (a), field id: duplicate id (row 1 has it too)",
        "c.yaml:8: row 2 (a), field title: must not be empty",
    ]
