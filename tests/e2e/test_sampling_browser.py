"""Lesson 8 in a real browser: open the next-token card, move the temperature slider with the keyboard (the
coloured bars change and the settings line says so), then let the model write a few tokens and see the text grow."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import put_on_card

pytestmark = pytest.mark.browser

PROMPT = "To be, or not to be, th"


def _kept_bars(page) -> str:
    """The y values of the 'after your settings' bars, as plotly drew them."""
    return page.evaluate("() => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')]"
                         ".map(d => d.data.filter(t => t.name === 'after your settings').map(t => t.y)))")


def test_temperature_and_token_by_token(site, browser):
    lesson, card = put_on_card(site, "sampling", card_id="try-it")

    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-8")
    page.get_by_role("heading", name=lesson.cards[card].title).first.wait_for()
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for()
    before = _kept_bars(page)

    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Temperature").get_by_role("slider")
    slider.focus()
    page.keyboard.press("Home")  # temperature 0: greedy
    page.get_by_text("settings: temperature 0 (greedy)").wait_for()
    page.wait_for_function("before => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')]"
                           ".map(d => d.data.filter(t => t.name === 'after your settings').map(t => t.y)))"
                           " !== before", arg=before)
    assert _kept_bars(page) != before

    for n in range(1, 4):
        page.get_by_role("button", name="Let the model pick").click()
        page.get_by_text(f"Text so far ({n} tokens added").wait_for()
    code = page.locator('[data-testid="stCode"]').first.inner_text()
    assert code.startswith(PROMPT) and len(code.strip()) >= len(PROMPT) + 1
    assert not page.locator('[data-testid="stAlertContentError"]').count()
