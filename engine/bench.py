"""Benchmarks: `python -m engine.bench train|tokenize`. Each appends its figures to docs/benchmarks.md.

Speed targets live here, never in timed unit tests (a loaded CI machine would make those flaky).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine_line() -> str:
    """A short description of this machine for the benchmark log."""
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def append_section(title: str, rows: list[tuple[str, str]]) -> None:
    """Append one dated section (a two-column table) to docs/benchmarks.md."""
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    if not BENCHMARKS_MD.exists():
        BENCHMARKS_MD.write_text("# Benchmarks\n\nAppended by `python -m engine.bench ...` and `python -m ui.bench`.\n")
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"\n## {title} ({stamp})\n", f"Machine: {machine_line()}\n", "\n| measure | value |\n|---|---|\n"]
    lines += [f"| {k} | {v} |\n" for k, v in rows]
    with BENCHMARKS_MD.open("a") as fh:
        fh.writelines(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.bench")
    parser.add_argument("which", choices=["train", "tokenize"])
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds (train only)")
    args = parser.parse_args(argv)
    if args.which == "train":
        from engine import bench_train

        bench_train.run(time_budget=args.time_budget)
    else:
        from engine import bench_tokenize

        bench_tokenize.run()


if __name__ == "__main__":
    main()
