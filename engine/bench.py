"""Benchmarks: `python -m engine.bench train|tokenize|embeddings|gpu|scaling|retrieval|load`. Each appends its
figures to docs/benchmarks.md (`load`, ten learners in one Chromium at once, also writes docs/benchmarks-load.json).

Speed targets live here, never in timed unit tests (a loaded CI machine would make those flaky). `gpu` is the
check of everything CPU tests cannot prove (torch.compile, bf16, NCCL across GPUs): run it on any CUDA machine.
The report helpers live in engine.bench_report, so the benchmarks can import them without importing this.
"""

from __future__ import annotations

import argparse
import sys

from engine.bench_report import BENCHMARKS_MD, append_section, machine_line

__all__ = ["BENCHMARKS_MD", "append_section", "machine_line", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark; returns the process exit code (non-zero when a `gpu` check failed)."""
    parser = argparse.ArgumentParser(prog="python -m engine.bench")
    parser.add_argument("which", choices=["train", "tokenize", "gpu", "embeddings", "scaling", "retrieval", "load"])
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds (train, and gpu's budgeted run)")
    args = parser.parse_args(argv)
    if args.which == "train":
        from engine import bench_train

        bench_train.run(time_budget=args.time_budget)
    elif args.which == "embeddings":
        from engine import bench_embeddings

        bench_embeddings.run()
    elif args.which == "scaling":
        from engine import bench_scaling

        bench_scaling.run()
    elif args.which == "retrieval":
        from engine import bench_retrieval

        bench_retrieval.run()
    elif args.which == "load":
        from engine import bench_load

        bench_load.run()
    elif args.which == "tokenize":
        from engine import bench_tokenize

        bench_tokenize.run()
    else:
        from engine import bench_gpu

        return bench_gpu.run(time_budget=args.time_budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
