"""A learner in a real browser: open lesson 2, reach the quiz, answer, reload: the answer is chosen again and the
lesson still at its quiz (a server killed and restarted keeps it all too: tests/e2e/test_journey.py)."""

from __future__ import annotations

import pytest

from course.loader import load_course
from tests.e2e.conftest import settled

pytestmark = pytest.mark.browser
LESSON2 = "how-llms-are-trained"


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    page.get_by_text("How LLMs are trained").first.wait_for()


def test_answer_survives_reload(site, browser):
    entry = load_course().entry(LESSON2)
    q = next(q for q in entry.quiz.questions if q.type == "single_choice")
    right = next(o for o in q.options if o.id == q.answer)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _open(page, f"{site.url}/lesson-2")
    page.get_by_text(entry.lesson.cards[0].title).wait_for()

    for card in entry.lesson.cards[1:]:
        page.get_by_role("button", name="Next").click()
        page.get_by_text(card.title).first.wait_for()
    page.get_by_role("button", name="Take the quiz").click()
    page.get_by_text(q.prompt).wait_for()

    box = page.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.get_by_text(right.text).click()
    box.get_by_role("button", name="Check answer").click()
    box.locator('[data-testid="stAlertContentSuccess"]').wait_for()
    assert "Correct!" in box.locator('[data-testid="stAlertContentSuccess"]').inner_text()

    page.reload()
    page.wait_for_selector('[data-testid="stApp"]')
    box = page.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.locator('[data-testid="stAlertContentSuccess"]').wait_for()
    chosen = box.locator('[data-testid="stRadioOption"][data-selected="true"]')
    chosen.wait_for()
    assert right.text in chosen.inner_text()  # the stored answer is selected again
    assert page.get_by_text("Quiz", exact=True).count() >= 1  # still at the quiz stage of the lesson
    _open(page, f"{site.url}/")
    page.get_by_text("In progress · at the quiz").wait_for()


def test_home_has_its_own_address(site, browser):
    """/home (Home's name in the address bar) opens Home, not Streamlit's "Page not found" dialog."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site.url}/home")
    page.get_by_text("How LLMs are trained, by training one").first.wait_for(timeout=90_000)
    # The server says a page is not found during the script run that draws the page; once that run has finished
    # and its messages are on the page, a not-found dialog would be open.
    settled(page)
    assert page.get_by_text(f"Welcome, {site.learner}").count() >= 1  # Home as this learner sees it
    assert not page.locator('[role="dialog"]').filter(has_text="Page not found").count()
    assert "Page not found" not in page.inner_text("body")
    assert page.url.rstrip("/") == site.url.rstrip("/")
