"""Speed of the course shell: `python -m ui.bench` appends its figures to docs/benchmarks.md.

Measures, with the bundled content: a cold start to the first rendered lesson (AppTest), a rerun of each lesson
page (AppTest; target under 300 ms), the validator over all content (target under 1 s), and first paint of a lesson
in a real browser (target under 3 s; skipped where Chromium is absent).

`python -m ui.bench --live` instead compares training speed from the CLI with the same run started from lesson 7's
page in Chromium (target: the live page costs at most about 10%).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from course.loader import load_course
from course.validate import validate
from engine.bench import append_section

ROOT = Path(__file__).resolve().parent.parent


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
    sys.path.insert(0, str(ROOT))
    import shutil

    from tests.e2e.conftest import CHROMIUM_FLAGS, Server  # the same server harness the browser tests use

    chromium = shutil.which("chromium")
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


def bench_live_training(budget: int = 60) -> list[tuple[str, str]]:
    """Tokens/s of the lesson preset from the CLI, then from lesson 7's page in Chromium while its fragment polls
    every second (same budget, same machine, one after the other). Target: the page costs at most ~10%."""
    import json
    import shutil
    import subprocess

    sys.path.insert(0, str(ROOT))
    from tests.e2e.conftest import CHROMIUM_FLAGS, Server

    chromium = shutil.which("chromium")
    if not chromium:
        return [("live page vs CLI training speed", "skipped: Chromium not installed")]
    from playwright.sync_api import sync_playwright

    from course.progress import ProgressStore

    with tempfile.TemporaryDirectory() as tmp:
        cli = subprocess.run(
            [sys.executable, "-m", "engine.train", "--preset", "lesson", "--corpus", str(ROOT / "data/tinyshakespeare.txt"),
             "--time-budget", str(budget), "--out", f"{tmp}/cli", "--quiet"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        cli_json = json.loads(cli.stdout.strip().splitlines()[-1])
        cli_tps = cli_json["tokens_per_s"]

        db, runs = Path(tmp) / "p.sqlite3", Path(tmp) / "runs"
        lesson = load_course().entry("training-loop").lesson
        card = next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == "train_run")
        store = ProgressStore(db)
        store.set_card(store.get_or_create_learner("Guest").id, lesson.id, card)
        store.close()
        os.environ["COURSE_RUNS_DIR"] = str(runs)
        srv = Server(db, Path(tmp) / "log.txt")
        srv.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page()
                page.goto(f"{srv.url}/lesson-7")
                page.get_by_role("button", name="Start training").click()
                page.get_by_text("✅ Finished").first.wait_for(timeout=(budget + 120) * 1000)
                browser.close()
        finally:
            srv.stop()
        summary = json.loads(next(runs.rglob("summary.json")).read_text())
        live_tps = summary["tokens_per_s"]
    slower = 1 - live_tps / cli_tps
    return [
        (f"lesson preset, {budget} s budget, CLI", f"{cli_tps:,.0f} tokens/s ({cli_json['device']})"),
        (f"lesson preset, {budget} s budget, lesson 7 page polling every 1 s",
         f"{live_tps:,.0f} tokens/s ({summary['device']})"),
        ("live page slowdown vs CLI (target <= ~10%)", f"{slower:+.1%}"),
    ]


def main() -> None:
    os.environ.setdefault("LLM_COURSE_DB", str(Path(tempfile.mkdtemp()) / "bench.sqlite3"))
    if "--live" in sys.argv:
        rows = bench_live_training()
        title = "Live training page vs CLI (python -m ui.bench --live)"
    else:
        rows = bench_apptest() + [bench_validator(), bench_browser()]
        title = "Course shell (python -m ui.bench)"
    for k, v in rows:
        print(f"{k}: {v}")
    append_section(title, rows)


if __name__ == "__main__":
    main()
