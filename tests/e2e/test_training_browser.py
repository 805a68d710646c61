"""Lesson 7 in a real browser: train a real GPT, watch it live, leave for another lesson and come back to the same
run, then answer the quiz question about your own run from what the page showed."""

from __future__ import annotations

import re

import pytest

from course.loader import load_course
from tests.e2e.conftest import LESSON7, open_at_training_card, step_shown, to_last_card

pytestmark = pytest.mark.browser


def test_train_watch_leave_come_back_and_answer(site, browser):
    lesson, card = open_at_training_card(site)
    entry = load_course().entry(LESSON7)

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-7")
    page.get_by_role("heading", name=lesson.cards[card].title).first.wait_for()
    # The real lesson preset (a 3-layer transformer), with a 20 s budget: the slider's minimum, then two steps up.
    budget = page.locator('[data-testid="stSlider"]').filter(has_text="Time budget").get_by_role("slider")
    budget.press("Home")
    budget.press("ArrowRight")
    budget.press("ArrowRight")
    page.wait_for_function("() => document.body.innerText.includes('20')")
    page.get_by_role("button", name="Start training").click()

    numbers = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="tokens/s").first
    page.get_by_text("🟢 Running").first.wait_for()
    page.locator('[data-testid="stEChartsChart"]').first.wait_for()
    page.wait_for_function("() => /Step [1-9]/.test(document.body.innerText)")  # it is training, live
    seen = step_shown(numbers.inner_text())

    # Another lesson: the run keeps training, and the sidebar says so.
    page.locator('[data-testid="stSidebarNav"]').get_by_text("1. The big picture").click()
    page.get_by_role("heading", name=load_course().entry("big-picture").lesson.cards[0].title).first.wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Training your run").wait_for()

    # Back: the same run, further along (or done), not a new one.
    page.locator('[data-testid="stSidebarNav"]').get_by_text("7. The training loop").click()
    page.get_by_text("✅ Finished").first.wait_for(timeout=120_000)
    steps = page.locator('[data-testid="stMetric"]').filter(has_text="Steps")
    # At least the step seen before leaving (a machine busy with other work may have reached the end of the
    # budget by then), and one run folder: the same run, not a second one.
    assert int(steps.locator('[data-testid="stMetricValue"]').inner_text().replace(",", "")) >= seen
    assert len(site.run_folders()) == 1
    loss = page.locator('[data-testid="stMetric"]').filter(has_text="Validation loss")
    val = float(loss.locator('[data-testid="stMetricValue"]').inner_text())
    drop = float(re.match(r"[-+][\d.]+", loss.locator('[data-testid="stMetricDelta"]').inner_text().strip()).group())
    start = val - drop  # the page shows the last validation loss and how far it fell since step 0

    to_last_card(page, lesson)
    page.get_by_role("button", name="Take the quiz").click()
    q = next(q for q in entry.quiz.questions if getattr(q, "answer_from", None) == "run.start_loss")
    box = page.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.locator("input").fill(f"{start:.2f}")
    box.get_by_role("button", name="Check answer").click()
    success = box.locator('[data-testid="stAlertContentSuccess"]')
    success.wait_for()
    assert "Correct!" in success.inner_text()
