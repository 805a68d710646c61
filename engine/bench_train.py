"""Training benchmark: `python -m engine.bench train` trains the `lesson` preset for a wall-clock budget on this
machine and appends what it reached to docs/benchmarks.md.

Target on the 2-core CPU this course is built on: validation loss <= 1.75 within 60 s on character-level
tiny Shakespeare (the 90/10 split, block_size >= 64, loss averaged over >= 50 validation batches).
The budget covers the whole loop, final evaluation included; building the model and encoding the text
(about a second) come before it. docs/training-notes.md records how the preset was tuned.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import Any

from engine.bench_report import append_section
from engine.config import DEFAULT_CORPUS, PRESETS
from engine.loop import train_loop
from engine.prepare import prepare
from engine.tokenization import CharTokenizer

TARGET_VAL_LOSS = 1.75
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
    c = state.config
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
    }
    print(json.dumps(result), flush=True)
    if write:
        met = "yes" if s["final_val_loss"] is not None and s["final_val_loss"] <= TARGET_VAL_LOSS else "no"
        append_section(f"Training: lesson preset, {time_budget:g} s budget", [
            ("device", s["device"]),
            ("model", f"{c.n_layer} layers, {c.n_head} heads, n_embd {c.n_embd}, block_size {c.block_size}, "
                      f"{s['params']:,} parameters"),
            ("optimizer", f"{c.optimizer} (lr {c.lr:g}" + (f", muon_lr {c.muon_lr:g})" if c.optimizer == "muon" else ")")
             + f", batch {c.batch_size}"),
            ("steps", f"{s['steps']:,}"),
            ("tokens/s (wall clock, evaluation included)", f"{s['tokens_per_s']:,.0f}"),
            ("training loop wall clock", f"{s['elapsed_s']:.1f} s (+ {setup_s:.1f} s setup before it)"),
            (f"final validation loss ({config.final_eval_batches} batches of {c.batch_size}x{c.block_size})",
             f"{s['final_val_loss']:.4f}"),
            ("final training loss (estimate)", f"{s['final_train_loss']:.4f}"),
            (f"target val loss <= {TARGET_VAL_LOSS} met", met),
            ("load average when it started", f"{load_before:.2f}"),
        ])
    return result
