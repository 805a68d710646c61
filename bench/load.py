"""Many learners at once: `python -m bench load`.

The way Streamlit load-tests its own server: one headless Chromium with a browser context per learner, all driven
at once (Playwright's async API; each learner is bench/load_learner.py), while psutil samples the server's memory,
CPU and threads. Ten learners step through lessons and answer quiz questions; four of them also start a training
run on lesson 7 (the tiny preset). The run manager trains as many as the machine holds and the rest wait in its
queue, which their pages show. Afterwards the progress store (`course.progress.ProgressStore`) is asked for every
answer a learner saw graded, and the run folders for how each run ended. The figures and their targets are
bench/load_summary.py's; they go to docs/benchmarks-load.json and docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import paths
from bench.app_server import Server, find_chromium
from bench.load_learner import READ_S, drive
from bench.load_summary import LearnerResult, summarise, write_summary
from course.loader import load_course
from course.progress import ProgressStore

LEARNERS = 10
TRAINERS = 4


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


def lost_answers(db: Path, learners: list[LearnerResult]) -> int:
    """How many answers a learner submitted (and saw graded) that the progress store does not have."""
    store = ProgressStore(db)
    try:
        ids = {learner.name: learner.id for learner in store.learners()}
        lost = 0
        for lr in learners:
            stored = store.answered(ids[lr.name]) if lr.name in ids else set()
            lost += sum(1 for a in lr.answers if a not in stored)
        return lost
    finally:
        store.close()


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
        asyncio.run(drive(server.url, chromium, load_course(*paths.content_dirs()), results, trainers, read_s))
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
