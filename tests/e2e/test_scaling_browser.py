"""Lesson 9's scaling sweep in a real browser: start the real ladder, watch it live until the first size has
finished with its loss on the table and the log-log chart, then stop the rest (the whole ladder takes minutes:
`python -m bench scaling` times it)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import put_on_card

pytestmark = pytest.mark.browser


def test_start_the_sweep_see_the_first_size_finish_then_stop(site, browser):
    lesson, card = put_on_card(site, "compute-and-scaling", widget="scaling_sweep")

    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-9")
    page.get_by_role("heading", name=lesson.cards[card].title).first.wait_for()
    page.get_by_text("Nothing trained yet").wait_for()
    page.get_by_role("button", name="Run the scaling sweep").click()

    table = page.locator('[data-testid="stMarkdownContainer"] table').first
    table.get_by_text("waiting in line").first.wait_for()  # one trains, the others queue behind it
    table.get_by_text("training: step").first.wait_for()  # live: the fragment redraws it
    table.get_by_text("✅ Finished").first.wait_for(timeout=120_000)  # the smallest size is done
    first = table.locator("tr").nth(1).inner_text()
    assert "Finished" in first and any(c.isdigit() for c in first.split("Finished")[-1])  # its loss is shown
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    assert "Reading the result" not in page.inner_text("body")  # the discussion waits for the checking run

    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Not every size finished").wait_for(timeout=90_000)
    assert page.get_by_role("button", name="Run the scaling sweep").is_enabled()
    body = page.inner_text("body")
    assert "waiting in line" not in body and "training: step" not in body
