"""Lessons 3 and 4 in a real browser: upload a text file, clean and deduplicate it, train a BPE tokenizer on it,
see text as tokens with it, and train a model with that tokenizer."""

from __future__ import annotations

import random

import pytest

from course.loader import load_course
from tests.e2e.conftest import next_card

pytestmark = pytest.mark.browser


def _my_text() -> str:
    """About 60 KB of 'my own notes': varied sentences, some paragraphs repeated (so dedup finds something)."""
    rng = random.Random(7)
    words = ("river stone garden lantern quiet morning letter harbour window orchard candle journey meadow "
             "silver thunder market bridge winter summer").split()
    paras = [" ".join(rng.choice(words) for _ in range(rng.randint(40, 80))).capitalize() + "." for _ in range(160)]
    paras += paras[:30]  # thirty exact copies
    rng.shuffle(paras)
    return "\n\n".join(paras)


def _card(page, title: str) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)


def _next_to(page, lesson, index: int, start: int) -> None:
    for i in range(start + 1, index + 1):
        next_card(page, lesson)  # the lesson's own Next, by its key, until the counter moves
        _card(page, lesson.cards[i].title)


def test_upload_clean_dedup_tokenize_and_train(site, browser, tmp_path):
    extract, tokenization = load_course().entry("extract").lesson, load_course().entry("tokenization").lesson
    upload = tmp_path / "my-notes.txt"
    upload.write_text(_my_text(), encoding="utf-8")

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{site.url}/lesson-3")
    _card(page, extract.cards[0].title)
    picker = next(i for i, c in enumerate(extract.cards) if c.widget and c.widget.name == "corpus_picker")
    _next_to(page, extract, picker, 0)
    page.get_by_text("Bring your own text").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text("is saved as your corpus").wait_for()

    cleaning = next(i for i, c in enumerate(extract.cards) if c.widget and c.widget.name == "cleaning_lab")
    _next_to(page, extract, cleaning, picker)
    page.get_by_text("Cleaning my notes").first.wait_for()
    page.locator('[data-testid="stMetric"]').filter(has_text="Text kept").wait_for()  # the lab's tile, not the notes
    dedup = next(i for i, c in enumerate(extract.cards) if c.widget and c.widget.name == "dedup_lab")
    _next_to(page, extract, dedup, cleaning)
    page.get_by_text("Exact copies removed").wait_for()
    exact = page.locator('[data-testid="stMetric"]').filter(has_text="Exact copies removed")
    assert exact.locator('[data-testid="stMetricValue"]').inner_text().strip() == "30"

    page.goto(f"{site.url}/lesson-4")
    _card(page, tokenization.cards[0].title)
    trainer = next(i for i, c in enumerate(tokenization.cards) if c.widget and c.widget.name == "bpe_trainer")
    _next_to(page, tokenization, trainer, 0)
    page.get_by_role("button", name="Train my tokenizer").click()
    page.get_by_text("Characters per token").first.wait_for()

    playground = next(i for i, c in enumerate(tokenization.cards) if c.widget and c.widget.name == "tokenizer_playground")
    for i in range(trainer - 1, playground - 1, -1):
        page.locator(f".st-key-lesson-{tokenization.id}-prev button").click()
        _card(page, tokenization.cards[i].title)
    page.get_by_text("Your own BPE").first.wait_for()

    run_card = next(i for i, c in enumerate(tokenization.cards) if c.widget and c.widget.name == "train_run")
    _next_to(page, tokenization, run_card, playground)
    page.get_by_text("tokenized with your BPE").wait_for()
    page.get_by_text("Tiny (seconds, a toy)").click()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("✅ Finished").first.wait_for(timeout=120_000)
    assert len(site.run_folders()) == 1  # the run trained in the course's runs folder, under this learner's name
    page.screenshot(path=str(tmp_path / "lesson4-bpe-run.png"))
