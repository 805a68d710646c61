"""Lesson 10's RAG playground in a real browser, as issue 13's "done when" reads: the learner builds the search
index over the course's own text and the bundled Python corpus, asks a question about the course and gets the
right passage first from semantic search, with the assembled prompt below."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import put_on_card

pytestmark = pytest.mark.browser


def test_ask_the_course_a_question_and_get_the_right_passage(site, browser):
    put_on_card(site, "load-and-beyond", widget="rag_playground")  # a fresh learner: no uploads of their own
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-10")
    page.get_by_role("button", name="Build the search index").click()
    page.get_by_text("so far").first.wait_for()  # built in the background, the page polling it
    question = page.get_by_label("Your question")
    question.wait_for(timeout=240_000)  # about 25 s on 2 quiet cores (python -m bench retrieval)
    question.fill("What is an epoch?")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("You asked:").wait_for()
    prompt = page.locator('[data-testid="stCode"]').filter(has_text="Question: What is an epoch?").first
    prompt.wait_for()  # the prompt comes last: both result columns are drawn by then
    body = page.inner_text("body")
    semantic = body[body.index("Semantic (cosine"):body.index("Keyword (BM25")]
    first = semantic[semantic.index("1. score"):semantic.index("2. score")]
    assert "Lesson 7, Batches, steps and epochs" in first  # the card that defines an epoch, ranked first
    assert "[1] Lesson 7, Batches, steps and epochs" in prompt.inner_text()  # the prompt a model would read
    assert (site.runs_dir / "retrieval").is_dir()  # the index was saved beside the runs, not in the project's data/
