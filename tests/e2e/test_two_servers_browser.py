"""Two course servers on different ports share one PostgreSQL database and one runs folder, as a class behind a
reverse proxy would: a learner answers on one, opens the other, and finds the answer, their place in the lesson
and their completion there."""

from __future__ import annotations

import pytest

import paths
from bench.app_server import Server
from course.loader import load_course
from course.progress import ProgressStore
from tests.e2e.conftest import settled
from tests.postgres import postgres_schema

pytestmark = pytest.mark.browser
LESSON2 = "how-llms-are-trained"


@pytest.fixture
def two_servers(tmp_path):
    with postgres_schema() as url:
        env = {paths.DATABASE_URL_VAR: url, paths.RUNS_VAR: str(tmp_path / "runs"),
               paths.UPLOADS_VAR: str(tmp_path / "uploads")}
        store = ProgressStore(url)  # the learner, made before either server opens (a fresh tab opens their progress)
        me = store.get_or_create_learner("Sam Shared")
        store.touch_learner(me.id)
        store.close()
        servers = [Server(tmp_path / f"unused-{i}.sqlite3", tmp_path / f"streamlit-{i}.log", env=env) for i in (1, 2)]
        try:
            for server in servers:
                server.start()
            yield servers, url
        finally:
            for server in servers:
                server.stop()


def test_an_answer_given_on_one_server_is_there_on_the_other(two_servers, browser) -> None:
    (one, two), url = two_servers
    entry = load_course().entry(LESSON2)
    q = next(q for q in entry.quiz.questions if q.type == "single_choice")
    right = next(o for o in q.options if o.id == q.answer)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)

    page.goto(f"{one.url}/lesson-2")
    page.get_by_text(entry.lesson.cards[0].title).first.wait_for()
    for card in entry.lesson.cards[1:]:
        page.locator(f".st-key-lesson-{LESSON2}-next button").click()
        page.get_by_text(card.title).first.wait_for()
    page.locator(f".st-key-lesson-{LESSON2}-to-quiz button").click()
    box = page.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.get_by_text(right.text).click()
    box.get_by_role("button", name="Check answer").click()
    box.locator('[data-testid="stAlertContentSuccess"]').wait_for()

    page.goto(f"{two.url}/")  # the other server: the same learner, at the quiz
    page.get_by_text("Welcome, Sam Shared").first.wait_for()
    page.get_by_text("In progress · at the quiz").first.wait_for()
    page.goto(f"{two.url}/lesson-2")
    box = page.locator(f".st-key-qbox-{entry.quiz.id}-{q.id}")
    box.locator('[data-testid="stAlertContentSuccess"]').wait_for()
    assert right.text in box.locator('[data-testid="stRadioOption"][data-selected="true"]').inner_text()
    settled(page)

    store = ProgressStore(url)  # one database holds it, and neither server made a SQLite file of its own
    learner = store.last_learner()
    assert store.quiz_records(learner.id, entry.quiz.id)[q.id].last.correct
    store.close()
    assert not any(p.exists() for p in (one.db, two.db))
