"""Where benchmark figures go: one dated section per run appended to docs/benchmarks.md.

Its own module so every benchmark (bench.train, bench.tokenization, bench.gpu, bench.pages, ...) can import it
without importing the command line in bench.cli, which imports them (a cycle otherwise).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable

import paths

BENCHMARKS_MD = paths.DOCS_DIR / "benchmarks.md"


def machine_line() -> str:
    """A short description of this machine for the benchmark log, e.g. "x86_64, 2 cores, Python 3.11.7"."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def append_section(title: str, rows: list[tuple[str, str]]) -> None:
    """Append one dated section (a two-column table) to docs/benchmarks.md."""
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    if not BENCHMARKS_MD.exists():
        BENCHMARKS_MD.write_text("# Benchmarks\n\nAppended by `python -m bench ...` and `python -m bench pages`.\n")
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"\n## {title} ({stamp})\n", f"Machine: {machine_line()}\n", "\n| measure | value |\n|---|---|\n"]
    lines += [f"| {k} | {v} |\n" for k, v in rows]
    with BENCHMARKS_MD.open("a") as fh:
        fh.writelines(lines)


def median_seconds(fn: Callable[[], object], repeat: int, warm_up: bool = False) -> float:
    """The median wall-clock seconds of `repeat` calls of `fn` (after one untimed call if `warm_up`: the first
    call pays for allocations and kernel selection). The median, because a shared machine adds outliers."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
