"""The load benchmark's figures: the p95 of click times, the summary of one run with a verdict on each target,
and the files it is written to (docs/benchmarks-load.json, replaced each run; a section of docs/benchmarks.md).

Pure Python, no browser and no server, so tests/bench/test_bench_load.py checks every figure and verdict from
made-up learners. The targets: no answer lost from the progress store, a click settled within `P95_TARGET_S` for
95% of clicks, the server under `MEMORY_TARGET_MB`, and every run a learner asked for trained.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paths
from bench.report import append_section

SUMMARY_JSON = paths.DOCS_DIR / "benchmarks-load.json"
CLASS_JSON = paths.DOCS_DIR / "benchmarks-load-class.json"  # `--class`: 30 learners over two servers on PostgreSQL
P95_TARGET_S = 1.0  # a click settles within a second for 95% of clicks
MEMORY_TARGET_MB = 1536.0  # the server's peak resident memory with ten learners


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
                                    f"{mark(t['memory_under_1_5_gb'])})"
         + (f"; each server: {', '.join(f'{m} MB' for m in summary['each_server_peak_rss_mb'])}"
            if len(summary.get("each_server_peak_rss_mb") or ()) > 1 else "")),
        ("servers / database", f"{summary.get('servers', 1)} / {summary.get('database', 'SQLite')}"),
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


def write_summary(summary: dict[str, Any], json_path: Path = SUMMARY_JSON, markdown: bool = True,
                  title: str | None = None) -> None:
    """The JSON summary (replaced each run) and a dated section in docs/benchmarks.md (appended)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if markdown:
        append_section(title or "Load: ten learners at once (bench.cli load)", markdown_rows(summary))
