"""Lesson 9 in a real browser, as issue 12's "done when" reads: the learner sees what their own run cost and would
cost on other hardware, prices a published model (more chips: fewer days, the same GPU-hours), and downloads their
run's report card as one self-contained HTML file holding the run's numbers."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from course.progress import ProgressStore
from engine.files import slug
from engine.train.config import PRESETS
from engine.train.job import run_job
from paths import DEFAULT_CORPUS
from tests.e2e.conftest import put_on_card

pytestmark = pytest.mark.browser


def _give_the_learner_a_finished_run(site) -> dict:
    run_dir = site.runs_dir / f"{slug(site.learner)}-lesson-run"
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:30_000]
    status, _, _ = run_job(replace(PRESETS["tiny"], max_steps=40), text, None, None, run_dir)
    assert status == "finished"
    store = ProgressStore(site.db)
    store.set_fact(site.learner_id, "run.main",
                   {"run_id": "trained-earlier", "run_dir": str(run_dir), "label": "lesson run"})
    store.close()
    return json.loads((run_dir / "summary.json").read_text())


def _days(page) -> float:
    row = page.locator("tr", has_text="Wall-clock time").first.inner_text()
    return float(re.search(r"([\d.]+) days", row).group(1))


def test_own_cost_a_published_models_price_and_the_report_card(site, browser, tmp_path):
    summary = _give_the_learner_a_finished_run(site)
    lesson, card = put_on_card(site, "compute-and-scaling", widget="cost_meter")
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-9")
    page.get_by_text("FLOPs so far").first.wait_for()
    page.get_by_text("Measure this machine's peak").first.wait_for()  # drawn after the price table
    body = page.inner_text("body")
    assert f"{summary['tokens']:,} tokens" in body  # the learner's own run, counted
    assert "NVIDIA H100 SXM 80GB" in body and "Achieved FLOP/s" in body  # and priced elsewhere

    page.get_by_role("button", name="Next").click()
    page.get_by_text("Wall-clock time").first.wait_for()
    before = _days(page)
    chips = page.get_by_label("Chips training together")
    chips.fill("2048")
    chips.press("Enter")
    page.wait_for_function(f"() => !document.body.innerText.includes('{before:g} days')")
    assert abs(_days(page) - before / 2) < 0.15  # twice the chips: half the days (and the same GPU-hours)

    put_on_card(site, "compute-and-scaling", widget="report_card")
    page.goto(f"{site.url}/lesson-9")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as HTML").click()
    saved = tmp_path / "card.html"
    download.value.save_as(saved)
    html = saved.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "<script" not in html.lower()
    assert f"{summary['final_val_loss']:.4f}" in html and f"{summary['tokens']:,}" in html
