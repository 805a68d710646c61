"""Training benchmark: `python -m bench train` trains the `lesson` preset for a wall-clock budget on this
machine and appends what it reached to docs/benchmarks.md.

Target on the 2-core CPU this course is built on: validation loss <= 1.58 within 60 s on
character-level tiny Shakespeare (the 90/10 split, block_size >= 64, loss averaged over >= 50 validation batches),
as the median of three runs (`--runs 3`, each in a process of its own, as a learner's run is). The budget covers
the whole loop, final evaluation included; building the model, encoding the text and measuring which precision
is faster for it come before it. docs/training-notes.md records how the preset was tuned.
Each run also times lesson 8's generation of 200 tokens with the model it trained (bench.generate).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

from bench.generate import N_TOKENS, time_generation
from bench.report import append_section
from engine.train.config import PRESETS
from engine.train.loop import train_loop
from engine.train.prepare import prepare
from engine.transform.tokenization import CharTokenizer
from paths import DEFAULT_CORPUS

TARGET_VAL_LOSS = 1.58
MIN_VAL_BATCHES = 50


def run(time_budget: float = 60.0, write: bool = True) -> dict[str, Any]:
    """Train `lesson` for `time_budget` seconds; print and (if `write`) append the figures. Returns them."""
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")
    config = replace(PRESETS["lesson"], time_budget=time_budget, max_steps=None,
                     final_eval_batches=max(MIN_VAL_BATCHES, PRESETS["lesson"].final_eval_batches))
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    state = prepare(config, text, CharTokenizer.from_text(text))
    setup_s = time.perf_counter() - t0

    def progress(rec: dict[str, Any]) -> None:
        if rec.get("val_loss") is not None:
            print(f"step {rec['step']:5d} | val {rec['val_loss']:.3f} | {rec['elapsed_s']:.1f}s", flush=True)

    outcome = train_loop(state, on_record=progress)
    s = outcome.summary
    c, m = state.config, state.config.model
    generation = time_generation(state.model, state.tokenizer)
    result = {
        "val_loss": s["final_val_loss"],
        "train_loss": s["final_train_loss"],
        "steps": s["steps"],
        "tokens_per_s": s["tokens_per_s"],
        "params": s["params"],
        "device": s["device"],
        "elapsed_s": s["elapsed_s"],
        "setup_s": setup_s,
        "load_avg_before": load_before,
        "status": outcome.status,
        "generate_s": generation["median_s"],
    }
    print(json.dumps(result), flush=True)
    if write:
        met = "yes" if s["final_val_loss"] is not None and s["final_val_loss"] <= TARGET_VAL_LOSS else "no"
        append_section(f"Training: lesson preset, {time_budget:g} s budget", [
            ("device", s["device"]),
            ("model", f"{m.n_layer} layers, {m.n_head} heads, n_embd {m.n_embd}, block_size {m.block_size}, "
                      f"{s['params']:,} parameters"),
            ("optimizer", f"{c.optimizer} (lr {c.lr:g}" + (f", muon_lr {c.muon_lr:g})" if c.optimizer == "muon" else ")")
             + f", batch {c.batch_size}"),
            ("steps", f"{s['steps']:,}"),
            ("tokens/s (wall clock, evaluation included)", f"{s['tokens_per_s']:,.0f}"),
            ("training loop wall clock", f"{s['elapsed_s']:.1f} s (+ {setup_s:.1f} s setup before it)"),
            (f"final validation loss ({config.final_eval_batches} batches of {c.batch_size}x{m.block_size})",
             f"{s['final_val_loss']:.4f}"),
            ("final training loss (estimate)", f"{s['final_train_loss']:.4f}"),
            (f"target val loss <= {TARGET_VAL_LOSS} met", met),
            (f"generating {N_TOKENS} tokens with it (lesson 8's generate_steps, median of 7)",
             f"{generation['median_s']:.3f} s"),
            ("load average when it started", f"{load_before:.2f}"),
        ])
    return result


def run_many(runs: int, time_budget: float = 60.0) -> dict[str, Any]:
    """`runs` runs of `run`, each in a fresh process, one after another; appends every run and the median."""
    results = []
    for i in range(runs):
        code = f"import json; from bench.train import run; print(json.dumps(run({time_budget!r}, write=False)))"
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(f"run {i + 1}: {results[-1]}", flush=True)
    median = statistics.median(r["val_loss"] for r in results)
    rows = [(f"run {i + 1}: val loss, steps, tokens/s, load average before",
             f"{r['val_loss']:.4f}, {r['steps']}, {r['tokens_per_s']:,.0f}, {r['load_avg_before']:.2f}")
            for i, r in enumerate(results)]
    c = PRESETS["lesson"]
    m = c.model
    rows += [("device", results[0]["device"]),
             ("model", f"{m.n_layer} layers, {m.n_head} heads, n_embd {m.n_embd}, block_size {m.block_size}, "
                       f"{results[0]['params']:,} parameters, batch {c.batch_size}"),
             (f"median final validation loss ({MIN_VAL_BATCHES} batches)", f"{median:.4f}"),
             (f"target median <= {TARGET_VAL_LOSS} met", "yes" if median <= TARGET_VAL_LOSS else "no"),
             (f"generating {N_TOKENS} tokens with the trained model (median over the runs)",
              f"{statistics.median(r['generate_s'] for r in results):.3f} s")]
    append_section(f"Training: lesson preset, {time_budget:g} s budget, {runs} runs", rows)
    return {"median": median, "results": results}
