"""AppTest helpers: a fresh progress database and run manager per test, and navigation to a page by its url path.

Runs a page starts train in a thread of the test's own process (`RunManager(workers="thread")`), not in a worker
process: each worker spends seconds importing torch, and what these tests check is the page, not the process. The
worker processes are tested where they are the subject: tests/engine/runs and the real-browser tests, whose
server trains in them as the course does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

import paths
from tests.conftest import wait_until

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HARNESS = str(Path(__file__).with_name("widget_harness.py"))


@pytest.fixture(autouse=True, scope="session")
def _runs_folder(tmp_path_factory):
    """Training runs started by page tests go to a temporary folder, not the project's runs/."""
    import os

    os.environ[paths.RUNS_VAR] = str(tmp_path_factory.mktemp("runs"))
    yield


@pytest.fixture(autouse=True)
def run_manager(tmp_path, monkeypatch):
    """The server's run manager, fresh for this test: training in threads, saving under the test's own folder.
    Whatever the test left training is stopped and waited for, so no run of one test trains through the next."""
    from engine.runs import manager as runs

    monkeypatch.setenv(paths.RUNS_VAR, str(tmp_path / "runs"))
    fresh = runs.RunManager(workers="thread", runs_root=tmp_path / "runs")
    monkeypatch.setattr(runs, "_manager", fresh)
    yield fresh
    live = [snap.run_id for snap in fresh.list_runs() if not snap.status.ended]
    for run_id in live:
        fresh.stop(run_id)
    for run_id in live:
        fresh.wait(run_id, timeout=60)


@pytest.fixture(autouse=True, scope="session")
def _warm_up():
    """The heavy imports made once, by the warm-up thread, before any test: as in the server, no test thread then
    makes a first import of them while that thread does (ui/warmup.py; tests/ui/test_warmup.py checks the cold path)."""
    from ui import warmup

    warmup.wait()
    yield


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "progress.sqlite3"
    monkeypatch.setenv("LLM_COURSE_DB", str(path))
    return path


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def goto(at: AppTest, url_path: str) -> AppTest:
    """Open a page registered by st.navigation. st.Page identifies a page by the hash of its url_path; AppTest's
    own switch_page only knows file-based pages, so we set the same hash it would."""
    at._page_hash = calc_hash(url_path)
    return at.run()


def texts(at: AppTest) -> str:
    """Everything shown as Markdown, titles, captions, alerts and (sub)headers, as one string to search."""
    parts = [e.value for e in at.markdown] + [e.value for e in at.title] + [e.value for e in at.caption]
    parts += [e.value for e in at.header] + [e.value for e in at.subheader]
    parts += [e.value for e in at.success] + [e.value for e in at.error]
    parts += [e.value for e in at.info] + [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)


def button(at: AppTest, key: str):
    return at.button(key=key)


def open_quiz(lesson_id: str) -> tuple[AppTest, str]:
    """A fresh app on a lesson's quiz, reached through its cards with the lesson's own buttons; and the quiz id."""
    from course.loader import load_course

    entry = load_course().entry(lesson_id)
    at = goto(new_app().run(), f"lesson-{entry.lesson.number}")
    for _ in range(len(entry.lesson.cards) - 1):
        at.button(key=f"lesson-{lesson_id}-next").click().run()
    at.button(key=f"lesson-{lesson_id}-to-quiz").click().run()
    assert not at.exception
    return at, entry.quiz.id


def answer_number(at: AppTest, quiz_id: str, question: str, text: str) -> AppTest:
    """Type an answer into a numeric question and press its Check button."""
    key = f"quiz-{quiz_id}-{question}"
    at.text_input(key=key).set_value(text).run()
    at.button(key=f"{key}-check").click().run()
    assert not at.exception
    return at


def widget_app(name: str, params: dict | None = None) -> AppTest:
    """One live widget alone on a page (tests/ui/widget_harness.py), run once; its keys start with `harness`."""
    at = AppTest.from_file(HARNESS, default_timeout=60)
    at.session_state["harness_widget"] = name
    at.session_state["harness_params"] = params or {}
    return at.run()


def no_errors(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]


def poll_until(at: AppTest, done, timeout: float = 60.0) -> AppTest:
    """Rerun until `done(at)`: run_every does not fire inside AppTest, so each at.run() is one poll."""
    def polled() -> bool:
        at.run()
        return bool(done(at))

    wait_until(polled, timeout=timeout, interval=0.3, what=lambda: f"condition not met; page said:\n{texts(at)[-1500:]}")
    return at
