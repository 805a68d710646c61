"""Lesson 5 in a real browser: open the embedding map card, move the timeline slider to the end of training with
the keyboard, and see the map change (the caption names the new step and the plotted points move)."""

from __future__ import annotations

import pytest

from engine.load.reference import REFERENCE_DIR
from engine.look_inside.embeddings import run_projection
from tests.e2e.conftest import put_on_card

pytestmark = pytest.mark.browser


def _points(page) -> str:
    """The x coordinates plotly drew, as one string (plotly keeps the figure's data on its graph div)."""
    return page.evaluate("() => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')]"
                         ".map(d => d.data.map(t => t.x)))")


def test_map_slider_moves_the_tokens(site, browser):
    lesson, card = put_on_card(site, "embeddings", widget="embedding_map")
    rp = run_projection(REFERENCE_DIR)
    final, tokens = rp.steps[-1], len(rp.frame(rp.steps[-1]).points)

    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-5")
    page.get_by_role("heading", name=lesson.cards[card].title).first.wait_for()
    page.get_by_text("What the map keeps at step 0:").wait_for()
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for()
    start = _points(page)

    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Training step").get_by_role("slider")
    slider.focus()
    page.keyboard.press("End")
    page.get_by_text(f"What the map keeps at step {final:,}:").wait_for()
    page.wait_for_function("before => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')]"
                           ".map(d => d.data.map(t => t.x))) !== before", arg=start)
    assert _points(page) != start
    assert page.get_by_text(f"The chart in words: {tokens} tokens at step {final:,}").count() == 1
    assert not page.locator('[data-testid="stAlertContentError"]').count()
