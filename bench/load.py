"""Many learners at once: `python -m bench load`.

The way Streamlit load-tests its own server: one headless Chromium with a browser context per learner, all driven
at once (Playwright's async API), while psutil samples the server's memory, CPU and threads. Ten learners (each
its own profile, made through the sidebar's "New profile" form) step through lessons with Next and answer quiz
questions; four of them also start a training run on lesson 7 (the tiny preset: 60 steps). The run manager trains
as many as the machine holds (one on a CPU) and the rest wait in its queue, which their pages show.

Figures: answers lost from the progress store (each learner's submitted answers looked up in the SQLite file), the
p95 time from a click to the page settling (the click's result on screen and the script no longer running), the
server's peak memory, and whether every queued run trained. Written to docs/benchmarks-load.json and appended to
docs/benchmarks.md.

Plain Python apart from Playwright and psutil: no Streamlit, no `ui` or `course` import (the layer rules), so the
server is started here as a subprocess and the lessons and quizzes are read from their YAML files.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

import paths
from bench.app_server import CHROMIUM_FLAGS, Server, find_chromium
from bench.report import append_section

ROOT = paths.ROOT
SUMMARY_JSON = ROOT / "docs" / "benchmarks-load.json"
LEARNERS = 10
TRAINERS = 4
TRAIN_LESSON = 7  # the lesson whose training card the trainers use
WALK_LESSONS = (1, 2)  # light lessons the others step through and answer
# Seconds a learner spends on a screen before the next click, drawn between these for each click: reading a card or
# a question. A real learner reads a card for half a minute or more; 5-10 s keeps ten learners clicking between
# one and two times a second between them, a class at its busiest (a few times faster than people read), while
# not timing clicks no person would make. `--read 0 0` measures the other extreme, every click as soon as it can.
READ_S = (5.0, 10.0)
ARRIVE_EVERY_S = 3.0  # learners open the course one after another, ten in half a minute
# Targets from issue 15.
P95_TARGET_S = 1.0
MEMORY_TARGET_MB = 1536.0


# ------------------------------------------------------------------ pure parts (unit-tested)


def p95(values: list[float]) -> float | None:
    """The 95th percentile by nearest rank (the smallest value with at least 95% of them at or below it).

    >>> p95([0.1] * 19 + [5.0]), p95([1.0, 2.0]), p95([])
    (0.1, 2.0, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class LearnerResult:
    name: str
    clicks: list[float] = field(default_factory=list)  # seconds from a click to the page settling
    clicked: list[str] = field(default_factory=list)  # what each click was, in the same order
    answers: list[tuple[str, str]] = field(default_factory=list)  # (quiz id, question id) submitted and confirmed
    trained: bool | None = None  # None: did not ask for a run
    saw_queue: bool = False  # its page showed its run waiting in the queue
    error: str | None = None


def summarise(learners: list[LearnerResult], lost_answers: int, runs: dict[str, int], peak_rss_mb: float,
              peak_children_rss_mb: float, peak_threads: int, mean_cpu: float, peak_cpu: float,
              wall_s: float, client_cpu: float | None = None, load: tuple[float, float] | None = None) -> dict[str, Any]:
    """The figures of one load run, with a verdict on each target."""
    clicks = [c for lr in learners for c in lr.clicks]
    timed = sorted(((c, f"{lr.name}: {what}") for lr in learners
                    for c, what in zip(lr.clicks, lr.clicked, strict=False)), reverse=True)
    asked = [lr for lr in learners if lr.trained is not None]
    p = p95(clicks)
    return {
        "learners": len(learners),
        "trainers": len(asked),
        "wall_s": round(wall_s, 1),
        "clicks": len(clicks),
        "click_p50_s": round(sorted(clicks)[len(clicks) // 2], 3) if clicks else None,
        "click_p95_s": round(p, 3) if p is not None else None,
        "click_max_s": round(max(clicks), 3) if clicks else None,
        "slowest_clicks": [f"{what} ({c:.1f} s)" for c, what in timed[:5]],
        "answers_submitted": sum(len(lr.answers) for lr in learners),
        "answers_lost": lost_answers,
        "runs_asked": len(asked),
        "runs_trained": sum(1 for lr in asked if lr.trained),
        "runs_seen_queued": sum(1 for lr in asked if lr.saw_queue),
        "run_statuses": runs,
        "server_peak_rss_mb": round(peak_rss_mb, 1),
        "training_processes_peak_rss_mb": round(peak_children_rss_mb, 1),
        "server_peak_threads": peak_threads,
        "server_cpu_mean_percent": round(mean_cpu, 1),
        "server_cpu_peak_percent": round(peak_cpu, 1),
        "browser_cpu_mean_percent": round(client_cpu, 1) if client_cpu is not None else None,
        "load_average_mean_peak": [round(v, 1) for v in load] if load is not None else None,
        "errors": [f"{lr.name}: {lr.error}" for lr in learners if lr.error],
        "targets": {
            "zero_lost_answers": lost_answers == 0,
            "p95_under_1s": p is not None and p < P95_TARGET_S,
            "memory_under_1_5_gb": peak_rss_mb < MEMORY_TARGET_MB,
            "every_queued_run_trained": bool(asked) and all(lr.trained for lr in asked),
        },
    }


def markdown_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as the two-column table docs/benchmarks.md uses."""
    t = summary["targets"]

    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    return [
        ("learners at once (browser contexts in one Chromium)", f"{summary['learners']}, {summary['trainers']} of them training"),
        ("wall time", f"{summary['wall_s']} s"),
        ("each learner's pause before a click (reading the screen)",
         "{:g}-{:g} s".format(*summary["read_s"]) if any(summary.get("read_s") or ()) else "none"),
        ("clicks timed", str(summary["clicks"])),
        ("click to settled page: p50 / p95 / max", f"{summary['click_p50_s']} / {summary['click_p95_s']} / "
                                                   f"{summary['click_max_s']} s (target p95 < {P95_TARGET_S:g} s: "
                                                   f"{mark(t['p95_under_1s'])})"),
        ("slowest clicks", "; ".join(summary["slowest_clicks"]) or "none"),
        ("answers submitted / lost from the store", f"{summary['answers_submitted']} / {summary['answers_lost']} "
                                                   f"({mark(t['zero_lost_answers'])})"),
        ("runs asked / trained / seen waiting in the queue",
         f"{summary['runs_asked']} / {summary['runs_trained']} / {summary['runs_seen_queued']} "
         f"({mark(t['every_queued_run_trained'])})"),
        ("server peak memory (RSS)", f"{summary['server_peak_rss_mb']} MB (target < {MEMORY_TARGET_MB:g} MB: "
                                    f"{mark(t['memory_under_1_5_gb'])})"),
        ("training processes' peak memory, together", f"{summary['training_processes_peak_rss_mb']} MB"),
        ("server threads, peak", str(summary["server_peak_threads"])),
        ("server CPU, mean / peak (100% = one core)", f"{summary['server_cpu_mean_percent']}% / "
                                                      f"{summary['server_cpu_peak_percent']}%"),
        ("browser side CPU, mean (Playwright and Chromium, on the same cores)",
         f"{summary['browser_cpu_mean_percent']}%"),
        ("machine load average (1 min), mean / peak, on 2 cores shared with other work",
         " / ".join(map(str, summary["load_average_mean_peak"] or ["?"]))),
        ("errors", "; ".join(summary["errors"]) or "none"),
    ]


def write_summary(summary: dict[str, Any], json_path: Path = SUMMARY_JSON, markdown: bool = True) -> None:
    """The JSON summary (replaced each run) and a dated section in docs/benchmarks.md (appended)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if markdown:
        append_section("Load: ten learners at once (bench.cli load)", markdown_rows(summary))


# ------------------------------------------------------------------ the course, read from its files


def _lessons() -> dict[int, dict[str, Any]]:
    out = {}
    for path in sorted((ROOT / "lessons").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "number" in data:
            out[int(data["number"])] = data
    return out


def _quiz(quiz_id: str | None) -> dict[str, Any] | None:
    for path in sorted((ROOT / "quizzes").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("id") == quiz_id:
            return data
    return None


# ------------------------------------------------------------------ the server and its sampler


class _Sampler(threading.Thread):
    """Samples the server process (and, apart, its training processes) every half second; also the CPU the
    browser side takes (this process's other children: Playwright's driver and Chromium) and the machine's load
    average, which say how much of a click's time the server is to blame for on a shared machine."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.me = psutil.Process(os.getpid())
        self.stop_event = threading.Event()
        self.rss: list[float] = []
        self.children_rss: list[float] = []
        self.cpu: list[float] = []
        self.threads: list[int] = []
        self.client_cpu: list[float] = []
        self.load: list[float] = []
        self._client: dict[int, Any] = {}  # pid -> psutil.Process, kept so cpu_percent measures between samples

    def _client_cpu(self) -> float:
        import psutil

        server_side = {self.proc.pid, *(c.pid for c in self.proc.children(recursive=True))}
        total = 0.0
        for child in self.me.children(recursive=True):
            if child.pid in server_side:
                continue
            proc = self._client.setdefault(child.pid, child)
            try:
                total += proc.cpu_percent(None)
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        import psutil

        self.proc.cpu_percent(None)
        while not self.stop_event.wait(0.5):
            try:
                self.rss.append(self.proc.memory_info().rss / 1e6)
                self.cpu.append(self.proc.cpu_percent(None))
                self.threads.append(self.proc.num_threads())
                total = 0.0
                for child in self.proc.children(recursive=True):
                    try:
                        total += child.memory_info().rss / 1e6
                    except psutil.Error:
                        pass
                self.children_rss.append(total)
                self.client_cpu.append(self._client_cpu())
                self.load.append(os.getloadavg()[0])
            except psutil.Error:
                return


# ------------------------------------------------------------------ one learner


class _Learner:
    def __init__(self, ctx, url: str, result: LearnerResult, read_s: tuple[float, float], seed: int):
        self.ctx, self.url, self.result = ctx, url, result
        self.read_s, self.rng = read_s, random.Random(seed)  # seeded: the same pauses in every run
        self.page = None

    async def settle(self, expect) -> None:
        """Wait until `expect` (a locator) is on the page and the script has stopped running."""
        await expect.first.wait_for()
        # polled on animation frames: true only once the browser is free to draw a frame after the script ended
        await self.page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState !== 'running'",
            polling="raf")

    async def click(self, target, expect, what: str) -> None:
        """Time one click: from the moment the button can take it (Playwright's actionability checks run first, as
        a trial click, so a click is not charged for the page before it still drawing) until the page has settled.
        Before it, the learner reads the screen for a few seconds (READ_S)."""
        await asyncio.sleep(self.rng.uniform(*self.read_s))
        await target.click(trial=True)
        t0 = time.perf_counter()
        await target.click()
        await self.settle(expect)
        self.result.clicks.append(time.perf_counter() - t0)
        self.result.clicked.append(what)

    async def open_as_new_profile(self) -> None:
        self.page = await self.ctx.new_page()
        self.page.set_default_timeout(180_000)
        await self.page.goto(self.url)
        sidebar = self.page.locator('[data-testid="stSidebar"]')
        await sidebar.get_by_role("button", name="New profile").click()
        await self.page.get_by_label("Your name").fill(self.result.name)
        await self.click(self.page.get_by_role("button", name="Create and switch"),
                         self.page.get_by_text(f"Welcome, {self.result.name}"), "create profile")  # Home greets the new profile
        await self.page.keyboard.press("Escape")  # close the form, which would cover the lower lesson links

    async def open_lesson(self, number: int, lesson: dict[str, Any]) -> None:
        nav = self.page.locator('[data-testid="stSidebarNav"]')
        await self.click(nav.locator(f'a[href$="/lesson-{number}"]'),
                         self.page.get_by_text(f"Card 1 / {len(lesson['cards'])}", exact=True), f"open lesson {number}")

    async def next_card(self, lesson: dict[str, Any], shown: int) -> None:
        button = self.page.locator(f".st-key-lesson-{lesson['id']}-next button")
        await self.click(button, self.page.get_by_text(f"Card {shown + 1} / {len(lesson['cards'])}", exact=True),
                         f"lesson {lesson['number']}: Next to card {shown + 1}")

    async def walk_and_answer(self, number: int, lesson: dict[str, Any]) -> None:
        """Every card with Next, then the quiz: each choice question answered with its first option."""
        await self.open_lesson(number, lesson)
        for shown in range(1, len(lesson["cards"])):
            await self.next_card(lesson, shown)
        quiz = _quiz(lesson.get("quiz"))
        if quiz is None:
            return
        first = quiz["questions"][0]["id"]
        await self.click(self.page.locator(f".st-key-lesson-{lesson['id']}-to-quiz button"),
                         self.page.locator(f".st-key-qbox-{quiz['id']}-{first}"), f"lesson {number}: Take the quiz")
        for q in quiz["questions"]:
            if q["type"] != "single_choice":
                continue
            box = self.page.locator(f".st-key-qbox-{quiz['id']}-{q['id']}")
            await box.locator('[data-testid="stRadioOption"]').first.click()
            check = box.locator(f".st-key-quiz-{quiz['id']}-{q['id']}-check button")
            await self.click(check, box.locator('[data-testid="stAlertContentSuccess"], '
                                                '[data-testid="stAlertContentError"]'), f"lesson {number}: Check {q['id']}")
            self.result.answers.append((quiz["id"], q["id"]))

    async def train(self, number: int, lesson: dict[str, Any]) -> None:
        """Lesson 7 up to its training card, the tiny preset, Start; then wait for the run to finish."""
        card = next(i for i, c in enumerate(lesson["cards"]) if (c.get("widget") or {}).get("name") == "train_run")
        await self.open_lesson(number, lesson)
        for shown in range(1, card + 1):
            await self.next_card(lesson, shown)
        await self.page.get_by_text("Tiny (seconds, a toy)").click()
        await self.page.get_by_text("The tiny preset runs a fixed").first.wait_for()
        key = f"{lesson['id']}-{lesson['cards'][card]['id']}"
        await self.click(self.page.locator(f".st-key-{key}-start button"),
                         self.page.get_by_text("⏳ Queued").or_(self.page.get_by_text("🟢 Running"))
                         .or_(self.page.get_by_text("✅ Finished")), "Start training")
        self.result.trained = False
        deadline = time.time() + 600
        finished = self.page.get_by_text("✅ Finished")
        queued = self.page.get_by_text("⏳ Queued")
        while time.time() < deadline:
            if await queued.count():
                self.result.saw_queue = True
            if await finished.count():
                self.result.trained = True
                return
            await asyncio.sleep(0.5)


async def _learner(browser, url: str, index: int, trainers: int, lessons: dict[int, dict[str, Any]],
                   result: LearnerResult, read_s: tuple[float, float]) -> None:
    await asyncio.sleep(ARRIVE_EVERY_S * index)  # learners arrive over half a minute, not in the same millisecond
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        learner = _Learner(ctx, url, result, read_s, seed=index)
        await learner.open_as_new_profile()
        if index < trainers:
            await learner.train(TRAIN_LESSON, lessons[TRAIN_LESSON])
        else:
            order = WALK_LESSONS if index % 2 else tuple(reversed(WALK_LESSONS))
            for number in order:
                await learner.walk_and_answer(number, lessons[number])
    except Exception as err:  # one learner's failure is a figure, not the end of the benchmark
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        waiting = next((line for line in lines if line.startswith("- waiting for")), "")
        result.error = f"{type(err).__name__}: {lines[0][:160] if lines else ''} {waiting[:200]}".strip()
    finally:
        await ctx.close()


async def _drive(url: str, chromium: str, results: list[LearnerResult], trainers: int,
                 read_s: tuple[float, float]) -> None:
    from playwright.async_api import async_playwright

    lessons = _lessons()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            await asyncio.gather(*(_learner(browser, url, i, trainers, lessons, r, read_s)
                                   for i, r in enumerate(results)))
        finally:
            await browser.close()


# ------------------------------------------------------------------ the store and the runs after the run


def lost_answers(db: Path, learners: list[LearnerResult]) -> int:
    """How many answers a learner submitted (and saw graded) that the progress store does not have."""
    conn = sqlite3.connect(db)
    try:
        ids = dict(conn.execute("SELECT name, id FROM learners").fetchall())
        lost = 0
        for lr in learners:
            stored = set(conn.execute("SELECT quiz_id, question_id FROM answers WHERE learner_id = ?",
                                      (ids.get(lr.name, -1),)).fetchall())
            lost += sum(1 for a in lr.answers if a not in stored)
        return lost
    finally:
        conn.close()


def run_statuses(runs: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for summary in runs.glob("*/summary.json"):
        status = json.loads(summary.read_text()).get("status", "?")
        counts[status] = counts.get(status, 0) + 1
    return counts


def run(learners: int = LEARNERS, trainers: int = TRAINERS, write: bool = True,
        read_s: tuple[float, float] = READ_S) -> dict[str, Any]:
    """Run the load benchmark, write its figures (unless `write` is False: a smoke run) and return them."""
    chromium = find_chromium()
    if not chromium:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    runs = work / "runs"
    server = Server(work / "progress.sqlite3", work / "streamlit.log",
                    env={"LLM_COURSE_RUNS": str(runs), "LLM_COURSE_UPLOADS": str(work / "uploads")})
    server.start(timeout=120)
    sampler = _Sampler(server.proc.pid)
    sampler.start()
    results = [LearnerResult(f"Load learner {i + 1}") for i in range(learners)]
    t0 = time.perf_counter()
    try:
        asyncio.run(_drive(server.url, chromium, results, trainers, read_s))
        wall = time.perf_counter() - t0
    finally:
        sampler.stop_event.set()
        sampler.join()
        server.stop()
    summary = summarise(
        results, lost_answers(server.db, results), run_statuses(runs),
        peak_rss_mb=max(sampler.rss, default=0.0), peak_children_rss_mb=max(sampler.children_rss, default=0.0),
        peak_threads=max(sampler.threads, default=0),
        mean_cpu=sum(sampler.cpu) / len(sampler.cpu) if sampler.cpu else 0.0, peak_cpu=max(sampler.cpu, default=0.0),
        wall_s=wall, client_cpu=sum(sampler.client_cpu) / len(sampler.client_cpu) if sampler.client_cpu else None,
        load=(sum(sampler.load) / len(sampler.load), max(sampler.load)) if sampler.load else None)
    summary["read_s"] = list(read_s)
    summary["learner_details"] = [asdict(r) | {"clicks": [round(c, 3) for c in r.clicks]} for r in results]
    if write:
        write_summary(summary)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "learner_details"}, indent=2), flush=True)
    return summary
