"""How many lesson runs one GPU holds before each slows down: the figure a class's slots per GPU should follow.

A lesson run (0.6M parameters, batch 32 x 64) keeps a GPU busy for microseconds per kernel and spends the rest of
each step launching the next few hundred, so one run uses a small share of the GPU and several processes share
it by time-slicing (docs/benchmarks.md, "GPU packing, on paper"). This starts 1, 2, 4, 8 runs at once, each in a
process of its own as the run manager would; each prepares (model, data, CUDA context), waits at a barrier so
they all train over the same seconds, trains for a wall-clock budget and reports its tokens/s and memory.
The slots figure is the most runs at once with every run still at `KEEP` of a lone run's tokens/s or more.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

import torch

from engine.train.config import TrainConfig

KEEP = 0.8  # a run may lose a fifth of its lone speed before the GPU counts as full
START_TIMEOUT_S = 300.0  # importing torch and starting CUDA in eight processes at once, on a loaded machine


@dataclass(frozen=True)
class Packed:
    """`count` runs trained together: each one's tokens/s (wall clock, evaluations included) and steps."""

    count: int
    tokens_per_s: list[float]
    steps: list[int]
    reserved_mb: float | None  # the most GPU memory one run's allocator held (its CUDA context not included)
    device_used_mb: float | None  # the GPU memory in use, every process together, as the first run ended

    @property
    def median(self) -> float:
        return statistics.median(self.tokens_per_s)


def _one_run(config: dict[str, Any], count: int, barrier: Any, results: Any, index: int) -> None:
    """A child process: prepare, wait for the others, train, report."""
    try:
        from engine.train.loop import train_loop
        from engine.train.prepare import prepare
        from paths import DEFAULT_CORPUS

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // count))  # the run manager's share of the cores
        state = prepare(TrainConfig.from_dict(config), DEFAULT_CORPUS.read_text(encoding="utf-8"))
        barrier.wait(timeout=START_TIMEOUT_S)
        outcome = train_loop(state)
        reserved = used = None
        if state.device.type == "cuda":
            free, total = torch.cuda.mem_get_info()
            reserved, used = torch.cuda.max_memory_reserved() / 2**20, (total - free) / 2**20
        results.put({"index": index, "tokens_per_s": outcome.summary["tokens_per_s"], "steps": outcome.summary["steps"],
                     "reserved_mb": reserved, "used_mb": used})
    except Exception as err:  # noqa: BLE001 - the parent reports it as the check's failure
        barrier.abort()
        results.put({"index": index, "error": f"{type(err).__name__}: {err}"})


def train_together(config: TrainConfig, count: int, seconds: float) -> Packed:
    """`count` runs of `config`, each for `seconds` of wall clock, at the same time."""
    ctx = mp.get_context("spawn")  # CUDA cannot be used in a forked child
    barrier, results = ctx.Barrier(count), ctx.Queue()
    job = replace(config, time_budget=seconds, max_steps=None, compile=False).to_dict()
    procs = [ctx.Process(target=_one_run, args=(job, count, barrier, results, i), daemon=True) for i in range(count)]
    for p in procs:
        p.start()
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + START_TIMEOUT_S + 3 * seconds
    try:
        while len(got) < count:
            try:
                got.append(results.get(timeout=1.0))
            except queue.Empty:
                gone = not any(p.is_alive() for p in procs)  # a child killed outright (out of memory) sends nothing
                if gone or time.monotonic() > deadline:
                    why = "ended without a word" if gone else "sent nothing within the deadline"
                    raise RuntimeError(f"{count - len(got)} of {count} runs {why}") from None
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    errors = [r["error"] for r in got if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} of {count} runs failed: {errors[0]}")
    reserved = [r["reserved_mb"] for r in got if r["reserved_mb"] is not None]
    used = [r["used_mb"] for r in got if r["used_mb"] is not None]
    return Packed(count, [r["tokens_per_s"] for r in got], [r["steps"] for r in got],
                  max(reserved, default=None), max(used, default=None))


def slots(rows: list[Packed], keep: float = KEEP) -> int:
    """The most runs at once with every run at `keep` of the lone run's tokens/s or more (at least 1).

    >>> slots([Packed(1, [100.0], [1], None, None), Packed(2, [95.0, 90.0], [1, 1], None, None),
    ...        Packed(4, [85.0, 70.0, 80.0, 81.0], [1] * 4, None, None)])
    2
    """
    alone = rows[0].median
    fit = [r.count for r in rows if min(r.tokens_per_s) >= keep * alone]
    return max(fit, default=1)


def pack(config: TrainConfig, counts: tuple[int, ...] = (1, 2, 4, 8), seconds: float = 15.0) -> list[Packed]:
    """Train 1, 2, 4, 8 ... runs together, one count after another."""
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()  # this process's cached blocks would count against the runs' memory
    return [train_together(config, count, seconds) for count in counts]


def check_packing(config: TrainConfig, counts: tuple[int, ...] = (1, 2, 4, 8), seconds: float = 15.0) -> list[
        tuple[str, str]]:
    """The GPU check's rows: per count, each run's tokens/s; then the slots figure."""
    rows = pack(config, counts, seconds)
    out = [("runs one GPU holds", f"{slots(rows)} at once before each run slows below {KEEP:.0%} of one alone "
                                  f"({seconds:g} s runs of the lesson preset; counts {', '.join(map(str, counts))})")]
    for r in rows:
        mem = "" if r.reserved_mb is None else (f"; {r.reserved_mb:,.0f} MB held by each run's allocator, "
                                                f"{r.device_used_mb / 1024:,.1f} GB of the GPU in use in all")
        out.append((f"  {r.count} at once", f"tokens/s per run {', '.join(f'{x:,.0f}' for x in sorted(r.tokens_per_s))}"
                                            f" ({r.median / rows[0].median:.0%} of one alone, "
                                            f"{sum(r.tokens_per_s):,.0f} together); steps per run "
                                            f"{statistics.median(r.steps):,.0f}{mem}"))
    return out
