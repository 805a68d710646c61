"""Real-browser fixtures: one Chromium and one Streamlit server for the whole test run, a fresh learner per test.

- `browser`: Debian's Chromium, launched once per run; each test opens its own pages (each `new_page` is a
  browser context of its own: no cookies or storage shared) and the fixture closes whatever the test left open.
- `site`: the shared course server (`bench/app_server.py`, its own database, runs and uploads folders under the
  run's temporary folder) seen as a learner created for this test and made the most recent one, so a fresh tab
  opens their progress and nobody else's. Their runs are the run folders named after them (`site.run_folders()`).
- `server`: a server of the test's own, for the tests that stop, kill or restart it (stopped by its own PID).

Skips with a clear reason where Chromium or Playwright is missing; `.ci/run` installs Chromium so CI runs these.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

import paths
from bench.app_server import CHROMIUM_FLAGS, Server, find_chromium
from course.loader import load_course
from course.progress import ProgressStore
from course.schema import Lesson
from engine.files import slug

LESSON7 = "training-loop"
GUEST = "Guest"  # the learner a server of a test's own starts with
# The script has finished its run and nothing on the page is stale (Streamlit fades an element from the last run
# while a rerun may replace it): what the server sent for that run is all on the page.
SETTLED = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === 'notRunning'
                 && !document.querySelector('[data-stale="true"]')"""


@dataclass(frozen=True)
class Site:
    """The shared server as one learner sees it."""

    server: Server
    learner_id: int
    learner: str
    runs_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def db(self) -> Path:
        return self.server.db

    def run_folders(self) -> list[Path]:
        """This learner's training runs (a run's folder is named after its label, which starts with their name)."""
        mark = f"-{slug(self.learner)}-"
        return [d for d in self.runs_dir.iterdir() if d.is_dir() and mark in d.name] if self.runs_dir.exists() else []


def _learner_of(where: Server | Site) -> str:
    return where.learner if isinstance(where, Site) else GUEST


def put_on_card(where: Server | Site, lesson_id: str, widget: str | None = None, card_id: str | None = None
                ) -> tuple[Lesson, int]:
    """Put the learner (the site's, or Guest on a server of the test's own) on a lesson's card (the first showing
    `widget`, or the one with `card_id`) before the page opens, so the page starts there; returns the lesson and the
    card's index."""
    lesson = load_course().entry(lesson_id).lesson
    card = next(i for i, c in enumerate(lesson.cards)
                if (widget is not None and c.widget is not None and c.widget.name == widget) or c.id == card_id)
    store = ProgressStore(where.db)
    store.set_card(store.get_or_create_learner(_learner_of(where)).id, lesson.id, card)
    store.close()
    return lesson, card


def open_at_training_card(where: Server | Site) -> tuple[Lesson, int]:
    """Put the learner on lesson 7's training card (before the page opens); returns the lesson and card."""
    return put_on_card(where, LESSON7, widget="train_run")


def settled(page, timeout: float = 60_000) -> None:
    """Wait until the script has finished its run and nothing on the page is stale."""
    page.wait_for_function(SETTLED, timeout=timeout)


def card_shown(page) -> int:
    """The number of the card on screen, from the lesson's "Card 3 / 9" counter."""
    shown = page.get_by_text(re.compile(r"^Card \d+ / \d+$")).first
    return int(re.match(r"Card (\d+)", shown.inner_text()).group(1))


def next_card(page, lesson: Lesson) -> None:
    """Press the lesson's own Next and wait until the next card's counter is on the page. Pressing again before
    that could land on the previous card's button while the new card is still being drawn over it. A press the app
    never received (a loaded machine once lost one while a widget finished drawing) is pressed again, but only
    once the app is idle and still shows the same card, so a slow press is never counted twice."""
    number = card_shown(page)
    button = page.locator(f".st-key-lesson-{lesson.id}-next button")
    counter = page.get_by_text(f"Card {number + 1} / {len(lesson.cards)}", exact=True).first
    button.click()
    try:
        counter.wait_for(timeout=20_000)
        return
    except PlaywrightTimeout:
        running = page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running")
        if running.count() == 0 and card_shown(page) == number:
            button.click()
    counter.wait_for(timeout=60_000)


def to_last_card(page, lesson: Lesson) -> None:
    """Step through the lesson with its own Next until its last card is on screen."""
    for _ in range(card_shown(page), len(lesson.cards)):
        next_card(page, lesson)


def step_shown(text: str) -> int:
    """The step number in a run's live line ("Step 1,234 · validation loss ...")."""
    return int(re.search(r"Step ([\d,]+)", text).group(1).replace(",", ""))


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def _chromium():
    """One headless Chromium for the whole run (launching one costs a second or two of a busy machine)."""
    chromium = find_chromium()
    if not chromium:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it so CI runs this test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def browser(_chromium):
    """The run's Chromium; every page or context the test opened is closed after it, so no tab of one test keeps
    polling a server (or holding a run's heartbeat) during the next."""
    yield _chromium
    for context in list(_chromium.contexts):
        context.close()


# ------------------------------------------------------------------ servers


@pytest.fixture(scope="session")
def course_server(tmp_path_factory) -> Iterator[Server]:
    """The one server shared by every browser test that leaves it running (started on first use). Its database,
    runs and uploads live under the run's temporary folder, never in the project's data/ or runs/."""
    if not find_chromium():
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it so CI runs this test")
    folder = tmp_path_factory.mktemp("course-server")
    srv = Server(folder / "progress.sqlite3", folder / "streamlit.log",
                 env={paths.RUNS_VAR: str(folder / "runs"), paths.UPLOADS_VAR: str(folder / "uploads")})
    srv.start()
    yield srv
    srv.stop()


_learners = itertools.count(1)


def new_learner(server: Server, name: str | None = None) -> tuple[int, str]:
    """A learner who has never used the course, made the most recent one (a fresh tab opens their progress)."""
    name = name or f"Browser learner {next(_learners)}"
    store = ProgressStore(server.db)
    try:
        me = store.get_or_create_learner(name)
        store.touch_learner(me.id)
    finally:
        store.close()
    return me.id, name


@pytest.fixture
def site(course_server) -> Site:
    """The shared server, as a learner of this test's own."""
    learner_id, name = new_learner(course_server)
    return Site(course_server, learner_id, name, Path(course_server.env[paths.RUNS_VAR]))


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A server of the test's own started after this fixture saves its runs here, not in the project's runs/."""
    monkeypatch.setenv(paths.RUNS_VAR, str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def uploads_dir(tmp_path, monkeypatch):
    """A server of the test's own started after this fixture keeps uploads and tokenizers here, not in data/."""
    monkeypatch.setenv(paths.UPLOADS_VAR, str(tmp_path / "uploads"))
    return tmp_path / "uploads"


@pytest.fixture
def server(tmp_path, runs_dir, uploads_dir) -> Iterator[Server]:
    """A server of this test's own (for a test that stops, kills or restarts it), on its own database, runs and
    uploads folders; stopped by its PID afterwards."""
    if not find_chromium():
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it so CI runs this test")
    srv = Server(tmp_path / "progress.sqlite3", tmp_path / "streamlit.log")
    srv.start()
    yield srv
    srv.stop()
