"""Lesson 9's report card in AppTest: without an ended run it says where to train one; with one it shows the card
and its two downloads; with two it sets them side by side with a download of its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.cost.report import report_from_folder
from engine.cost.report_format import LOSS_DIGITS
from engine.number_format import loss
from engine.train.config import PRESETS
from engine.train.job import run_job
from paths import DEFAULT_CORPUS
from tests.ui.conftest import no_errors, texts, widget_app
from ui.text import escape_md


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two real tiny runs (trained once for the module), as a lesson-7 run and a second one would leave them."""
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    out = {}
    for name, steps in (("main", 40), ("wide", 20)):
        run_dir = tmp_path_factory.mktemp(name) / "run"
        run_job(replace(PRESETS["tiny"], max_steps=steps), text, None, None, run_dir)
        out[name] = run_dir
    return out


def _record(name: str, run_dir: Path, label: str) -> None:
    from ui.session import store

    learner = store().get_or_create_learner("Ada")
    store().set_fact(learner.id, f"run.{name}", {"run_id": f"gone-{name}", "run_dir": str(run_dir), "label": label})


def _downloads(at) -> list:
    return list(at.get("download_button"))


def test_no_run_says_where_to_train(db):
    at = widget_app("report_card")
    no_errors(at)
    assert "lesson 7" in texts(at) and "Train your model" in texts(at)
    assert not _downloads(at)


def test_the_card_and_its_downloads(db, runs):
    _record("main", runs["main"], "my <b>first</b> run")
    at = widget_app("report_card", {"compare": True})
    no_errors(at)
    assert at.selectbox(key="harness-run").value == "main"
    report = report_from_folder(runs["main"])
    shown = texts(at)
    assert escape_md("my <b>first</b> run") in shown and "<b>" not in shown  # the learner's label, shown as text
    assert loss(report.final_val_loss, LOSS_DIGITS) in [m.value for m in at.metric]
    assert "Train another run" in shown  # only one run: nothing to compare with yet
    assert [d.proto.label for d in _downloads(at)] == ["Download as Markdown", "Download as HTML"]
    numbers = at.dataframe[0].value
    assert dict(zip(numbers["what"], numbers["value"], strict=True))["steps"] == "40"
    assert len(at.get("echarts_chart")) == 1


def test_two_runs_side_by_side(db, runs):
    _record("main", runs["main"], "lesson run")
    _record("wide", runs["wide"], "shorter run")
    at = widget_app("report_card", {"run_key": "wide"})
    no_errors(at)
    assert at.selectbox(key="harness-run").value == "wide"
    assert at.selectbox(key="harness-other").value == "main"
    assert len(_downloads(at)) == 4 and len(at.get("echarts_chart")) == 2
    compare = next(d.value for d in at.dataframe if "difference (B − A)" in d.value.columns)
    assert dict(zip(compare["what"], compare["difference (B − A)"], strict=True))["steps"] == "+20 (×2)"
    at.selectbox(key="harness-run").set_value("main").run()
    no_errors(at)
    assert at.selectbox(key="harness-other").value == "wide"
