"""Speed of the course shell: `python -m bench pages` appends its figures to docs/benchmarks.md.

Measures, with the bundled content: a cold start to the first rendered lesson (AppTest), a rerun of each lesson
page (AppTest; target under 300 ms), the validator over all content (target under 1 s), and first paint of a lesson
in a real browser (target under 3 s; skipped where Chromium is absent).

`python -m bench live` instead measures what watching a run costs it (bench/live.py; `python -m bench live-meter`
the same with the run watched on lesson 9's cost meter; target: the live page costs at most about 10% against the
CLI).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

import paths
from bench.report import append_section
from course.loader import load_course
from course.validate import validate

ROOT = paths.ROOT


def _goto(at: AppTest, url_path: str) -> AppTest:
    at._page_hash = calc_hash(url_path)  # how st.Page identifies a callable page (see tests/ui/conftest.py)
    return at.run()


def bench_apptest() -> list[tuple[str, str]]:
    rows = []
    t0 = time.perf_counter()
    at = _goto(AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run(), "lesson-1")
    rows.append(("cold start to first rendered lesson (AppTest, incl. imports)", f"{time.perf_counter() - t0:.2f} s"))
    from course.progress import ProgressStore

    store = ProgressStore(os.environ["LLM_COURSE_DB"])
    learner = store.last_learner()
    for lesson in load_course().lessons:
        worst, where = 0.0, "card 1"
        cards = [0] + [i for i, c in enumerate(lesson.cards) if c.widget is not None]
        for card in cards:  # the first card, then every card with a live widget (the heavy ones)
            store.set_card(learner.id, lesson.id, card)
            at = _goto(at, f"lesson-{lesson.number}")  # first render computes and caches
            times = []
            for _ in range(5):
                t = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t)
            if statistics.median(times) > worst:
                worst, where = statistics.median(times), f"card {card + 1}"
        rows.append((f"rerun of lesson {lesson.number}, slowest card ({where}; median of 5; target < 300 ms)",
                     f"{worst * 1000:.0f} ms"))
    return rows


def bench_validator() -> tuple[str, str]:
    t = time.perf_counter()
    problems = validate([ROOT / "lessons", ROOT / "quizzes"])
    took = time.perf_counter() - t
    return ("validator over all content (target < 1 s)", f"{took * 1000:.0f} ms ({len(problems)} problems)")


def bench_browser() -> tuple[str, str]:
    from bench.app_server import (  # the same server harness the browser tests use
        CHROMIUM_FLAGS,
        Server,
        find_chromium,
    )

    chromium = find_chromium()
    if not chromium:
        return ("first paint of a lesson in Chromium (target < 3 s)", "skipped: Chromium not installed")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "p.sqlite3", Path(tmp) / "log.txt")
        srv.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page()
                page.goto(f"{srv.url}/lesson-1")  # warm the server's imports once, as a running course would be
                page.wait_for_selector('[data-testid="stProgress"]')
                page = browser.new_page()
                t = time.perf_counter()
                page.goto(f"{srv.url}/lesson-1")
                page.wait_for_selector('[data-testid="stProgress"]')
                took = time.perf_counter() - t
                browser.close()
        finally:
            srv.stop()
    return ("first paint of a lesson in Chromium, warm server (target < 3 s)", f"{took:.2f} s")


def run(which: str = "pages") -> None:
    """`pages`: the course shell; `live`: what watching a run costs it; `live-meter`: the same on lesson 9's meter."""
    os.environ.setdefault("LLM_COURSE_DB", str(Path(tempfile.mkdtemp()) / "bench.sqlite3"))
    if which == "live-meter":
        from bench import live as bench_live

        rows = bench_live.run(reps=3, cost_meter=True)
        title = "Lesson 9's cost meter watching a run vs CLI (python -m bench live-meter)"
    elif which == "live":
        from bench import live as bench_live

        rows = bench_live.run()
        title = "Live training page vs CLI (python -m bench live)"
    else:
        rows = bench_apptest() + [bench_validator(), bench_browser()]
        title = "Course shell (python -m bench pages)"
    for k, v in rows:
        print(f"{k}: {v}")
    append_section(title, rows)
