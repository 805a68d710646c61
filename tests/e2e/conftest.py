"""Real-browser fixtures: a Streamlit server on a free port (`bench/app_server.py`, stopped by its own PID) and Debian's
Chromium.

Skips with a clear reason where Chromium or Playwright is missing; `.ci/run` installs Chromium so CI runs these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bench.app_server import CHROMIUM_FLAGS, Server, find_chromium
from course.loader import load_course
from course.progress import ProgressStore
from course.schema import Lesson

LESSON7 = "training-loop"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """Servers started after this fixture save their runs here, not in the project's runs/."""
    monkeypatch.setenv("LLM_COURSE_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def put_on_card(server: Server, lesson_id: str, widget: str | None = None, card_id: str | None = None
                ) -> tuple[Lesson, int]:
    """Put the Guest learner on a lesson's card (the first showing `widget`, or the one with `card_id`) before the
    page opens, so the page starts there; returns the lesson and the card's index."""
    lesson = load_course().entry(lesson_id).lesson
    card = next(i for i, c in enumerate(lesson.cards)
                if (widget is not None and c.widget is not None and c.widget.name == widget) or c.id == card_id)
    store = ProgressStore(server.db)
    store.set_card(store.get_or_create_learner("Guest").id, lesson.id, card)
    store.close()
    return lesson, card


def open_at_training_card(server: Server) -> tuple[Lesson, int]:
    """Put the Guest learner on lesson 7's training card (before the page opens); returns the lesson and card."""
    return put_on_card(server, LESSON7, widget="train_run")


def card_shown(page) -> int:
    """The number of the card on screen, from the lesson's "Card 3 / 9" counter."""
    shown = page.get_by_text(re.compile(r"^Card \d+ / \d+$")).first
    return int(re.match(r"Card (\d+)", shown.inner_text()).group(1))


def next_card(page, lesson: Lesson) -> None:
    """Press the lesson's own Next and wait until the next card's counter is on the page. Pressing again before
    that could land on the previous card's button while the new card is still being drawn over it."""
    number = card_shown(page)
    page.locator(f".st-key-lesson-{lesson.id}-next button").click()
    page.get_by_text(f"Card {number + 1} / {len(lesson.cards)}", exact=True).first.wait_for(timeout=60_000)


def to_last_card(page, lesson: Lesson) -> None:
    """Step through the lesson with its own Next until its last card is on screen."""
    for _ in range(card_shown(page), len(lesson.cards)):
        next_card(page, lesson)


def step_shown(text: str) -> int:
    """The step number in a run's live line ("Step 1,234 · validation loss ...")."""
    return int(re.search(r"Step ([\d,]+)", text).group(1).replace(",", ""))


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    srv = Server(tmp_path / "progress.sqlite3", tmp_path / "streamlit.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def browser():
    chromium = find_chromium()
    if not chromium:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it so CI runs this test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()
