"""Benchmarks: `python -m bench pages|live|live-meter|train|versus|generate|nanogpt|tokenize|embeddings|gpu|scaling|
retrieval|load|class`. Each appends its figures to docs/benchmarks.md (`load`, ten learners in one Chromium at once, also
writes docs/benchmarks-load.json; `pages` is the course shell, `live` what watching a run costs it; `class`, thirty
learners' lesson runs through the run manager on the local pool and on Ray, takes about 45 minutes on 2 cores).

Speed targets live here, never in timed unit tests (a loaded CI machine would make those flaky). `gpu` is the
check of everything CPU tests cannot prove (torch.compile, bf16, NCCL across GPUs): run it on any CUDA machine.
The report helpers live in bench.report, so the benchmarks can import them without importing this.
"""

from __future__ import annotations

import argparse

from bench.report import BENCHMARKS_MD, append_section, machine_line

__all__ = ["BENCHMARKS_MD", "append_section", "machine_line", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark; returns the process exit code (non-zero when a `gpu` check failed)."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", choices=["pages", "live", "live-meter", "train", "versus", "generate", "nanogpt",
                                          "tokenize", "gpu", "embeddings", "scaling", "retrieval", "load", "class"])
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds (train, versus, gpu's budgeted run)")
    parser.add_argument("--runs", type=int, default=1, help="train: this many runs, each in its own process, and their median")
    parser.add_argument("--pairs", type=int, default=3, help="versus, nanogpt: how many alternating pairs")
    parser.add_argument("--before", default=None, help="versus: the commit whose lesson preset is 'before'")
    parser.add_argument("--nanogpt", default=None, help="nanogpt: a checkout of github.com/karpathy/nanoGPT")
    parser.add_argument("--steps", type=int, default=300, help="nanogpt: iterations per run")
    parser.add_argument("--read", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="load: seconds each learner reads a screen before a click (default 5 10; 0 0 = no pause)")
    parser.add_argument("--class", dest="class_", action="store_true",
                        help="load: a class, 30 learners over two course servers on PostgreSQL (the machine's)")
    parser.add_argument("--learners", type=int, default=30, help="class: learners, each asking for one run")
    parser.add_argument("--seconds", type=float, default=20.0, help="class: each run's time budget")
    parser.add_argument("--slots", default="1,2,4", help="class: the local pool's slot counts, comma-separated")
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True,
                        help="class: also on a Ray head in a network namespace (needs root)")
    args = parser.parse_args(argv)
    if args.which in ("pages", "live", "live-meter"):
        from bench import pages

        pages.run(args.which)
    elif args.which == "train":
        from bench import train as bench_train

        if args.runs > 1:
            bench_train.run_many(args.runs, time_budget=args.time_budget)
        else:
            bench_train.run(time_budget=args.time_budget)
    elif args.which == "versus":
        from bench import versus as bench_versus

        bench_versus.run(pairs=args.pairs, time_budget=args.time_budget, before=args.before or bench_versus.BEFORE_COMMIT)
    elif args.which == "generate":
        from bench import generate as bench_generate

        bench_generate.run()
    elif args.which == "nanogpt":
        from pathlib import Path

        from bench import nanogpt as bench_nanogpt

        if not args.nanogpt:
            parser.error("nanogpt needs --nanogpt PATH (a checkout of github.com/karpathy/nanoGPT)")
        bench_nanogpt.run(Path(args.nanogpt), steps=args.steps, pairs=args.pairs)
    elif args.which == "embeddings":
        from bench import embeddings as bench_embeddings

        bench_embeddings.run()
    elif args.which == "scaling":
        from bench import scaling as bench_scaling

        bench_scaling.run()
    elif args.which == "retrieval":
        from bench import retrieval as bench_retrieval

        bench_retrieval.run()
    elif args.which == "load":
        from bench import load as bench_load

        read_s = tuple(args.read) if args.read else bench_load.READ_S
        bench_load.run(read_s=read_s, **(bench_load.CLASS if args.class_ else {}))
    elif args.which == "class":
        from bench import classroom

        slots = [int(k) for k in args.slots.split(",") if k.strip()]
        classroom.run(learners=args.learners, seconds=args.seconds, slots=slots, ray=args.ray)
    elif args.which == "tokenize":
        from bench import tokenization as bench_tokenize

        bench_tokenize.run()
    else:
        from bench import gpu as bench_gpu

        return bench_gpu.run(time_budget=args.time_budget)
    return 0

