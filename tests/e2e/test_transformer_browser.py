"""Lesson 6 in a real browser: type a prompt into the attention card and see a heatmap whose axes carry exactly
that prompt's tokens (the reference model reads characters; spaces are drawn as ␣)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import put_on_card

pytestmark = pytest.mark.browser


def test_typed_prompt_becomes_the_heatmap_axes(site, browser):
    lesson, card = put_on_card(site, "transformer", widget="attention_heatmap")

    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-6")
    page.get_by_role("heading", name=lesson.cards[card].title).first.wait_for()
    page.get_by_role("button", name="I have my guess: show the attention").click()  # the card asks for a guess first
    prompt = page.get_by_role("textbox", name="Prompt")
    prompt.fill("JULIET: O Romeo")
    prompt.press("Enter")
    page.get_by_text("15 tokens").wait_for()
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator("g.xtick text", has_text="J ·0").wait_for()  # the new prompt's chart, not the default's
    ticks = [t.split(" ·")[0] for t in chart.locator("g.xtick text").all_text_contents()]
    assert ticks == list("JULIET:␣O␣Romeo")
    assert [t.split(" ·")[0] for t in chart.locator("g.ytick text").all_text_contents()] == ticks
    page.get_by_text("Layer 1, head 1: the last position (“o”)").wait_for()
