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
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import paths
from bench.app_server import Server, find_chromium
from bench.load_learner import READ_S, drive
from bench.load_summary import CLASS_JSON, SUMMARY_JSON, LearnerResult, summarise, write_summary
from course.loader import load_course
from course.progress import ProgressStore

LEARNERS = 10
TRAINERS = 4
CLASS = {"learners": 30, "trainers": 6, "servers": 2, "postgres": True}  # `--class`: a class behind a proxy


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


def lost_answers(db: Path | str, learners: list[LearnerResult]) -> int:
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
        read_s: tuple[float, float] = READ_S, servers: int = 1, postgres: bool = False) -> dict[str, Any]:
    """Run the load benchmark, write its figures (unless `write` is False: a smoke run) and return them.

    `servers` > 1: that many course servers on one database and one runs folder, learner i on server i mod n (a
    class behind a proxy with sticky sessions); `postgres`: the database is a throwaway schema of the machine's
    PostgreSQL (bench/postgres.py), as a class's is."""
    chromium = find_chromium()
    if not chromium:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="bench-load-"))
        runs = work / "runs"
        env = {paths.RUNS_VAR: str(runs), paths.UPLOADS_VAR: str(work / "uploads")}
        database: Path | str = work / "progress.sqlite3"
        if postgres:
            from bench.postgres import throwaway_schema

            database = stack.enter_context(throwaway_schema())
            env[paths.DATABASE_URL_VAR] = database
        started = [Server(work / "progress.sqlite3", work / f"streamlit-{i}.log", env=env) for i in range(servers)]
        for server in started:
            server.start(timeout=120)
        samplers = [_Sampler(server.proc.pid) for server in started]
        for sampler in samplers:
            sampler.start()
        results = [LearnerResult(f"Load learner {i + 1}") for i in range(learners)]
        t0 = time.perf_counter()
        try:
            asyncio.run(drive([server.url for server in started], chromium, load_course(*paths.content_dirs()),
                              results, trainers, read_s))
            wall = time.perf_counter() - t0
        finally:
            for sampler in samplers:
                sampler.stop_event.set()
                sampler.join()
            for server in started:
                server.stop()
        every_cpu = [c for sampler in samplers for c in sampler.cpu]
        loads = samplers[0].load
        summary = summarise(
            results, lost_answers(database, results), run_statuses(runs),
            peak_rss_mb=max((max(s.rss, default=0.0) for s in samplers), default=0.0),
            peak_children_rss_mb=max((max(s.children_rss, default=0.0) for s in samplers), default=0.0),
            peak_threads=max((max(s.threads, default=0) for s in samplers), default=0),
            mean_cpu=sum(every_cpu) / len(every_cpu) if every_cpu else 0.0, peak_cpu=max(every_cpu, default=0.0),
            wall_s=wall,
            client_cpu=(sum(samplers[0].client_cpu) / len(samplers[0].client_cpu)
                        if samplers[0].client_cpu else None),
            load=(sum(loads) / len(loads), max(loads)) if loads else None)
        summary["read_s"] = list(read_s)
        summary["servers"] = servers
        summary["database"] = "PostgreSQL" if postgres else "SQLite"
        summary["each_server_peak_rss_mb"] = [round(max(s.rss, default=0.0), 1) for s in samplers]
        summary["learner_details"] = [asdict(r) | {"clicks": [round(c, 3) for c in r.clicks]} for r in results]
        if write:
            write_summary(summary, json_path=CLASS_JSON if servers > 1 else SUMMARY_JSON,
                          title=(f"Load: a class of {learners} over {servers} servers on {summary['database']} "
                                 "(bench.cli load --class)") if servers > 1 else None)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "learner_details"}, indent=2), flush=True)
    return summary
