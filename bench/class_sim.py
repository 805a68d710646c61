"""What a class sees: a class's lesson runs submitted to the course's own run manager, as its pages would.

A pool that is fast for one learner can still leave a class waiting at "queued", and a queue that is first come,
first served lets a learner's second run push ahead of someone's first. So this drives a RunManager as thirty
pages would: each learner asks for one timed run, arriving close together (seeded), a third ask for a second run
right after (if the queue refuses it, as the page would say, they press again until it is taken), and every page
keeps polling. It reports when the last run finished, the p50 and p95 wait for a first run, whether any learner's
first run started after another learner's second run (which they had queued before), the manager's peak memory and,
on the local pool, what each run trained in its wall-clock budget: more slots, shorter waits, smaller shares.

`simulate` takes any RunManager (local pool or Ray; bench.ray_cluster's driver runs it inside the cluster's
namespace). bench.classroom is the command (`python -m bench class`) that runs it for each pool and writes the figures.
"""

from __future__ import annotations

import dataclasses
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from engine.runs.fair_queue import QueueFull
from engine.runs.manager import RunManager
from engine.train.config import PRESETS, TrainConfig
from engine.transform.tokenization import CharTokenizer

MIB = 1024 * 1024


class PeakRss:
    """Samples the summed RSS of `pids()` every `interval` seconds in a thread; `peak_mib` is the highest seen."""

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float = 0.25) -> None:
        self.pids, self.interval, self.peak_mib = pids, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            total = 0
            for pid in self.pids():
                try:
                    total += psutil.Process(pid).memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak_mib = max(self.peak_mib, total / MIB)
            if self._stop.wait(self.interval):
                return


def own_pid() -> list[int]:
    return [os.getpid()]


def children_pids() -> list[int]:
    """This process's descendants: the local pool's training processes."""
    return [p.pid for p in psutil.Process().children(recursive=True)]


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def fairness(runs: list[dict[str, Any]]) -> str | None:
    """None if no learner's first run started after another learner's second run that started while the first was
    already asked for; otherwise a sentence naming the first such pair."""
    firsts = [r for r in runs if r["nth"] == 1 and r["started_at"] is not None]
    seconds = [r for r in runs if r["nth"] == 2 and r["started_at"] is not None]
    for second in sorted(seconds, key=lambda r: r["started_at"]):
        for first in sorted(firsts, key=lambda r: r["started_at"]):
            if first["owner"] != second["owner"] and first["created_at"] <= second["started_at"] < first["started_at"]:
                return (f"{first['owner']}'s first run started {first['started_at'] - second['started_at']:.1f} s "
                        f"after {second['owner']}'s second run, although it was asked for first")
    return None


def simulate(manager: RunManager, text: str, learners: int = 30, seconds: float = 20.0, spread_s: float = 3.0,
             second_every: int = 3, seed: int = 0, device: str = "cpu", poll_s: float = 0.2,
             timeout_s: float | None = None, base: TrainConfig | None = None) -> dict[str, Any]:
    """Submit a class's runs to `manager` as its pages would and return the figures (plain JSON data).

    Learner i arrives at a seeded moment within `spread_s` seconds; every `second_every`-th learner asks for a
    second run right after the first (retried at each poll while the queue refuses it). Every page heartbeats.
    `base`: the run's settings before its budget (the lesson preset by default; a test passes a tiny one).
    """
    config = dataclasses.replace(base or PRESETS["lesson"], time_budget=seconds, max_steps=None, device=device)
    tokenizer = CharTokenizer.from_text(text)
    manager.keep_ended_s = 1e9  # every run's figures are read at the end
    rng = random.Random(seed)
    arrivals = sorted((rng.uniform(0.0, spread_s), f"learner{i:02d}") for i in range(learners))
    wants_two = {owner for k, (_, owner) in enumerate(arrivals) if second_every and k % second_every == 0}
    pending = [(at, owner, 1) for at, owner in arrivals]
    submitted: dict[str, tuple[str, int]] = {}  # run id -> (owner, 1st or 2nd)
    refused = 0
    deadline = time.monotonic() + (timeout_s or 120.0 + 2 * learners * (seconds + 60.0))
    t0 = time.time()
    while pending or any(not s.status.ended for s in manager.list_runs()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the class did not finish in time: {len(pending)} runs not yet submitted")
        now = time.time() - t0
        for item in [p for p in pending if p[0] <= now]:
            _, owner, nth = item
            try:
                run_id = manager.submit(config, text, tokenizer=tokenizer, owner=owner, label=f"{owner} run {nth}")
            except QueueFull:
                refused += 1
                continue
            pending.remove(item)
            submitted[run_id] = (owner, nth)
            if nth == 1 and owner in wants_two:
                pending.append((now, owner, 2))
        for snap in manager.list_runs():
            if not snap.status.ended and snap.run_id in submitted:
                manager.heartbeat(snap.run_id)
        time.sleep(poll_s)
    runs = []
    for run_id, (owner, nth) in submitted.items():
        snap = manager.snapshot(run_id, history=False)
        runs.append({"owner": owner, "nth": nth, "status": str(snap.status), "created_at": snap.created_at,
                     "started_at": snap.started_at, "finished_at": snap.finished_at, "step": snap.step,
                     "val_loss": (snap.summary or {}).get("final_val_loss")})
    return summarise(runs, t0, refused)


def summarise(runs: list[dict[str, Any]], t0: float, refused: int) -> dict[str, Any]:
    """The figures of one simulated class from its runs' records."""
    first_waits = [r["started_at"] - r["created_at"] for r in runs if r["nth"] == 1 and r["started_at"] is not None]
    finished = [r for r in runs if r["status"] == "finished"]
    losses = [r["val_loss"] for r in finished if r["val_loss"] is not None]
    return {
        "runs": len(runs), "first_runs": sum(r["nth"] == 1 for r in runs), "second_runs": sum(r["nth"] == 2 for r in runs),
        "finished": len(finished), "not_finished": sorted({r["status"] for r in runs} - {"finished"}),
        "total_s": max((r["finished_at"] or t0) for r in runs) - t0 if runs else 0.0,
        "wait_p50_s": _percentile(first_waits, 50), "wait_p95_s": _percentile(first_waits, 95),
        "wait_max_s": max(first_waits, default=None),
        "unfair": fairness(runs), "refused": refused,
        "median_steps": statistics.median([r["step"] for r in finished]) if finished else None,
        "median_val_loss": statistics.median(losses) if losses else None,
    }
