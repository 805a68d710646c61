"""Side by side: `python -m bench versus` trains the lesson preset as an earlier commit of the engine had it
("before") and as the working tree has it ("after"), each for the same wall-clock budget, in alternating pairs,
and appends every pair and the medians to docs/benchmarks.md.

Why alternating pairs of whole runs: this shared 2-core machine's speed drifts from minute to minute by more than
most changes worth measuring (docs/benchmarks.md), so a change is judged by runs made back to back, the order
swapped from pair to pair.
Why a commit rather than a copy of the old settings: the old preset is only what it was with the code it ran on
(its Muon, its loop, its precision rule); `git archive` of that commit's engine (and whatever it imports) runs
exactly that. Each run is its own process (the training benchmark's `run(write=False)` in that tree).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import paths
from bench.report import append_section

BEFORE_COMMIT = "a83f88c"  # the engine before the lesson preset was retuned (docs/training-notes.md)
EXPORTED = ("engine", "bench", "paths.py", "manifests.py")  # those a commit has, besides the corpus


def one_run(tree: Path, time_budget: float) -> dict[str, Any]:
    """The training benchmark of the engine in `tree` (bench.train, or engine.bench_train in a tree from before the
    benchmarks had a folder of their own), in a fresh process; its result dict."""
    module = "bench.train" if (tree / "bench" / "train.py").is_file() else "engine.bench_train"
    code = f"import json; from {module} import run; print(json.dumps(run({time_budget!r}, write=False)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def export_commit(commit: str, dest: Path) -> Path:
    """What a training run needs, as it was at `commit` (the engine, the benchmarks and the top-level modules they
    import, where that commit has them, and the corpus), unpacked into `dest`."""
    listed = subprocess.run(["git", "ls-tree", "--name-only", commit, "--", *EXPORTED, "data/tinyshakespeare.txt"], cwd=paths.ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    archive = subprocess.run(["git", "archive", commit, *listed], cwd=paths.ROOT, check=True,
                             capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run(pairs: int = 3, time_budget: float = 60.0, before: str = BEFORE_COMMIT, write: bool = True) -> dict[str, Any]:
    """`pairs` alternating pairs of 60 s runs, before vs after; prints and appends each pair and the medians."""
    rows: list[tuple[str, str]] = []
    results: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        trees = {"before": export_commit(before, Path(tmp)), "after": paths.ROOT}
        for i in range(pairs):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            pair = {who: one_run(trees[who], time_budget) for who in order}
            for who in order:
                results[who].append(pair[who])
            b, a = pair["before"], pair["after"]
            rows.append((f"pair {i + 1} ({order[0]} first): before vs after, val loss (steps, tokens/s)",
                         f"{b['val_loss']:.4f} ({b['steps']}, {b['tokens_per_s']:,.0f}) vs "
                         f"{a['val_loss']:.4f} ({a['steps']}, {a['tokens_per_s']:,.0f}): {a['val_loss'] - b['val_loss']:+.4f}"))
            print(rows[-1], flush=True)
    med = {who: statistics.median(r["val_loss"] for r in rs) for who, rs in results.items()}
    wins = sum(a["val_loss"] <= b["val_loss"] for a, b in zip(results["after"], results["before"], strict=True))
    rows += [("before", f"commit {before}, its lesson preset ({results['before'][0]['device']})"),
             ("after", f"the working tree's lesson preset ({results['after'][0]['device']})"),
             ("median validation loss, before vs after", f"{med['before']:.4f} vs {med['after']:.4f} "
                                                         f"({med['after'] - med['before']:+.4f})"),
             ("pairs in which after is at least as good", f"{wins} of {pairs}")]
    if write:
        append_section(f"Side by side: the lesson preset at commit {before} and now, {time_budget:g} s each "
                       "(bench.versus)", rows)
    return {"median": med, "wins": wins, "results": results}
