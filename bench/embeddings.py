"""Benchmark of "inside the model" (lesson 5 on): `python -m bench embeddings` (appends to docs/benchmarks.md).

What a learner waits for when the embedding map is drawn: reading one timeline snapshot of a `lesson`-preset
model (a 65 x 128 table, character-level tiny Shakespeare), fitting its principal axes and building the plot
data (target < 300 ms); the whole run's map (every snapshot, as `run_projection` computes it the first time);
and scrubbing, i.e. asking for the map again once it is cached (should be well under a millisecond).

The run folder is built here, not trained: a randomly initialised GPT of the lesson preset's shape, saved as 9
timeline snapshots (engine.load.checkpoint's maximum) whose weights drift a little from one to the next. Timing does
not depend on what the weights have learned, only on their shape.

To add a measure, write a function `(Bench) -> list[(measure, value)]` and append it to `MEASURES`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from bench import inspection as bench_inspection
from bench import report as bench_report
from bench.report import median_seconds
from engine.load import checkpoint
from engine.look_inside import embeddings
from engine.train.config import PRESETS
from engine.transform.model import GPT
from engine.transform.tokenization import CharTokenizer, Tokenizer
from paths import DEFAULT_CORPUS

SNAPSHOTS = checkpoint.TIMELINE_MAX + 1  # as many as a run keeps


@dataclass
class Bench:
    """What every measure gets: a run folder with a timeline, its steps, and the tokenizer it was saved with."""

    run_dir: Path
    steps: list[int]
    tokenizer: Tokenizer
    repeat: int


def build_run(run_dir: Path, snapshots: int = SNAPSHOTS, seed: int = 0) -> Bench:
    """A run folder holding `snapshots` timeline snapshots of a random-init lesson-preset GPT (char tokenizer)."""
    torch.manual_seed(seed)
    tokenizer = CharTokenizer.from_text(DEFAULT_CORPUS.read_text(encoding="utf-8"))
    model = GPT(PRESETS["lesson"].model_config(tokenizer.vocab_size))
    steps = [0] + [int(10 * 1.7**i) for i in range(snapshots - 1)]
    for step in steps:
        with torch.no_grad():
            model.transformer.wte.weight.add_(0.01 * torch.randn_like(model.transformer.wte.weight))  # (V, C)
        payload = {"model": model.state_dict(), "model_config": asdict(model.config),
                   "tokenizer": tokenizer.to_dict(), "step": step}
        checkpoint.save_timeline_entry(run_dir, payload, {"step": step, "train_loss": None, "val_loss": None})
    return Bench(run_dir, [e["step"] for e in checkpoint.list_timeline(run_dir)], tokenizer, repeat=5)


def measure_projection(b: Bench) -> list[tuple[str, str]]:
    """(a) one snapshot cold: read, fit, build the points; the whole run cold; (b) scrubbing once cached."""
    step = b.steps[-1]

    def one_cold() -> None:
        embeddings.clear_cache()
        table, texts = embeddings.run_table(b.run_dir, step)  # (V, C)
        embeddings.project_table(table, texts, dims=3, step=step)

    def run_cold() -> None:
        embeddings.clear_cache()
        embeddings.run_projection(b.run_dir)

    one = median_seconds(one_cold, b.repeat)
    whole = median_seconds(run_cold, b.repeat)
    embeddings.run_projection(b.run_dir)  # warm the cache
    scrub = median_seconds(lambda: embeddings.run_projection(b.run_dir).frame(b.steps[len(b.steps) // 2]), 50)
    table, texts = embeddings.run_table(b.run_dir, step)
    neighbours = median_seconds(lambda: embeddings.nearest_neighbours(table, texts, 0, k=5), 50)
    big = torch.randn(4096, table.shape[1])  # (V, C) a BPE-sized vocabulary
    big_texts = [f"t{i}" for i in range(4096)]
    big_time = median_seconds(lambda: embeddings.project_table(big, big_texts, dims=3), b.repeat)
    v, c = table.shape
    return [
        (f"one snapshot, {v} x {c} table: read, fit PCA, build 3-D points (target < 300 ms)", f"{one * 1000:.1f} ms"),
        (f"whole run, {len(b.steps)} snapshots, first time (run_projection)", f"{whole * 1000:.1f} ms"),
        ("scrub: run_projection again once cached, one frame (should be ~instant)", f"{scrub * 1e6:.0f} µs"),
        ("nearest_neighbours, k=5", f"{neighbours * 1000:.2f} ms"),
        (f"project_table, 4,096 x {c} table (a BPE-sized vocabulary)", f"{big_time * 1000:.1f} ms"),
    ]


def measure_next_token(b: Bench) -> list[tuple[str, str]]:
    """Next-token probabilities, generation, attention and the logit lens (bench.inspection): lesson 8's
    target is under 100 ms for a prompt's probabilities."""
    return bench_inspection.timings()


MEASURES: list[Callable[[Bench], list[tuple[str, str]]]] = [measure_projection, measure_next_token]


def run(write: bool = True, repeat: int = 5) -> list[tuple[str, str]]:
    """Measure, print and (if `write`) append the figures; returns the (measure, value) rows."""
    load = os.getloadavg()[0]
    rows = [("1-minute load average when the run started (other processes share the cores)", f"{load:.1f}"),
            ("torch threads", str(torch.get_num_threads()))]
    with tempfile.TemporaryDirectory() as tmp:
        b = replace(build_run(Path(tmp) / "run"), repeat=repeat)
        for measure in MEASURES:
            rows += measure(b)
        embeddings.clear_cache()  # the cache holds paths inside the folder about to be removed
    for name, value in rows:
        print(f"{name:<90} {value}")
    if write:
        bench_report.append_section("Embeddings: the token map (bench.embeddings)", rows)
    return rows
