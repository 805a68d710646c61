"""Speed of the course shell: `python -m bench pages` appends its figures to docs/benchmarks.md.

Measures, with the bundled content: a cold start to the first rendered lesson (AppTest), a rerun of each lesson
page (AppTest; target under 300 ms), the validator over all content (target under 1 s), and in a real browser
(skipped where Chromium is absent): Home's first paint on a fresh server process (cold: from the server's first
health answer to Home's first lesson title on screen, the wait of a newcomer after `make run`; target under 3 s),
Home's first paint once the server has served a lesson (warm; target under 2 s), a lesson's first paint on a warm
server (target under 3 s), each beside the machine's load average, since the cores are shared.

`python -m bench live` instead measures what watching a run costs it (bench/live.py; `python -m bench live-meter`
the same with the run watched on lesson 9's cost meter; target: at most about 10% against the CLI).
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


HOME_TITLE = '[class*="st-key-home-lesson-"] h4'  # a lesson title on Home's course map (ui/home.py)
LESSON_SHOWN = '[data-testid="stProgress"]'  # a lesson page's card counter
COLD_STARTS = 3  # fresh server processes, each visited once: the median is reported with the range
WARM_VISITS = 5


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def _first_paint(browser, url: str, selector: str) -> float:
    """Seconds from opening a new tab on `url` to `selector` visible in it."""
    page = browser.new_page()
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(selector, timeout=120_000)
    took = time.perf_counter() - t
    page.close()
    return took


def _spread(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} s (median of {len(times)}; {min(times):.2f}-{max(times):.2f})"


def bench_browser() -> list[tuple[str, str]]:
    """Home cold and warm, and a lesson warm, in Chromium (the same server harness the browser tests use)."""
    from bench.app_server import CHROMIUM_FLAGS, Server, find_chromium

    names = ("cold first paint of Home: fresh server, first visit, health-ok to first lesson title (target < 3 s)",
             "warm first paint of Home: a later visit, the server has served a lesson (target < 2 s)",
             "first paint of a lesson in Chromium, warm server (target < 3 s)")
    chromium = find_chromium()
    if not chromium:
        return [(name, "skipped: Chromium not installed") for name in names]
    from playwright.sync_api import sync_playwright

    cold, warm, lesson, loads = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            for i in range(COLD_STARTS):
                srv = Server(Path(tmp) / f"p{i}.sqlite3", Path(tmp) / "log.txt")
                srv.start()  # returns at the server's first health answer
                try:
                    loads.append(_load_average())
                    cold.append(_first_paint(browser, srv.url, HOME_TITLE))
                    if i == COLD_STARTS - 1:
                        # a learner's first click on: the lesson waits for the warm-up, then every later visit is warm
                        _first_paint(browser, f"{srv.url}/lesson-1", LESSON_SHOWN)
                        warm = [_first_paint(browser, srv.url, HOME_TITLE) for _ in range(WARM_VISITS)]
                        lesson = [_first_paint(browser, f"{srv.url}/lesson-1", LESSON_SHOWN)
                                  for _ in range(WARM_VISITS)]
                        loads.append(_load_average())
                finally:
                    srv.stop()
        finally:
            browser.close()
    where = f" [{loads[0]} at the first start; {loads[-1]} at the end]"
    return [(names[0], _spread(cold) + where), (names[1], _spread(warm)), (names[2], _spread(lesson))]


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
        rows = bench_browser() + bench_apptest() + [bench_validator()]
        title = "Course shell (python -m bench pages)"
    for k, v in rows:
        print(f"{k}: {v}")
    append_section(title, rows)
