"""The scaling sweep's ladder, timed end to end: `python -m bench scaling`.

Runs `engine.cost.scaling.default_ladder()` exactly as the course does: every rung submitted to a RunManager in this
process, each trained in its own worker process (start-up included in its time), one at a time. Writes per-rung
parameters, tokens, FLOPs, final validation loss and seconds, the whole ladder's time (the course promises it
under 5 minutes on 2 CPU cores), the fitted law and how far its prediction for the verifying size was off.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import append_section
from engine.cost.scaling import Rung, RungPoint, default_ladder, rung_flops, rung_parameters, sweep_view
from engine.runs.manager import RunManager
from engine.train.status import RunStatus
from engine.transform.tokenization import CharTokenizer
from paths import DEFAULT_CORPUS

LADDER_LIMIT_S = 300.0  # the whole ladder must train within 5 minutes on 2 CPU cores


def run_ladder(rungs: Sequence[Rung], text: str, workers: str = "process",
               runs_root: Path | str | None = None) -> dict[str, Any]:
    """Train `rungs` one after another through a RunManager; returns per-rung figures, the total and the fit."""
    vocab = CharTokenizer.from_text(text).vocab_size
    root = Path(runs_root) if runs_root is not None else Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    manager = RunManager(runs_root=root, workers=workers)
    t0 = time.perf_counter()
    ids = [manager.submit(r.config, text, label=f"sweep {r.name}") for r in rungs]  # all queued, one trains
    rows, points = [], []
    for rung, run_id in zip(rungs, ids, strict=True):
        snap = manager.wait(run_id)
        if snap.status != RunStatus.FINISHED:
            raise RuntimeError(f"rung {rung.name} ended {snap.status}: {snap.message}")
        tokens = int(snap.metrics[-1]["tokens"])
        point = RungPoint(rung.name, rung_parameters(rung.config, vocab), tokens,
                          rung_flops(rung.config, vocab, tokens), snap.final_val_loss, rung.is_verify)
        points.append(point)
        seconds = (snap.finished_at or time.time()) - (snap.started_at or snap.created_at)
        rows.append({"point": point, "seconds": seconds,
                     "train_s": float(snap.metrics[-1].get("elapsed_s") or 0.0)})
        print(f"{rung.name:>20}: {point.params:,} params, loss {point.loss:.4f}, {seconds:.1f} s", flush=True)
    total = time.perf_counter() - t0
    return {"rows": rows, "total_s": total, "view": sweep_view(points), "vocab": vocab}


def run(write: bool = True) -> dict[str, Any]:
    """Time the default ladder with real worker processes; print and (if `write`) append the figures."""
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")
    load = os.getloadavg()[0]
    result = run_ladder(default_ladder(), text)
    view = result["view"]
    rows: list[tuple[str, str]] = [
        ("1-minute load average when the ladder started (other processes share the cores)", f"{load:.1f}")]
    for r in result["rows"]:
        p: RungPoint = r["point"]
        role = "verifying run" if p.is_verify else "fitted"
        rows.append((f"{p.name} ({role}): parameters / tokens / FLOPs",
                     f"{p.params:,} / {p.tokens:,} / {p.flops:.3g}"))
        rows.append((f"{p.name}: final validation loss, seconds (worker start-up included; training alone)",
                     f"{p.loss:.4f}, {r['seconds']:.1f} s ({r['train_s']:.1f} s)"))
    rows.append((f"whole ladder, queued to last finished (target < {LADDER_LIMIT_S:.0f} s)",
                 f"{result['total_s']:.1f} s"))
    if view.fit is not None:
        rows.append(("fit (on the fitted sizes)", view.fit.in_words()))
        rows.append(("fit residuals (measured - fitted loss)", ", ".join(f"{v:+.4f}" for v in view.fit.residuals)))
        rows.append(("prediction for the verifying size / measured / error",
                     f"{view.predicted:.4f} / {view.verify.loss:.4f} / {view.error_pct:+.2f}%"))
    else:
        rows.append(("fit", view.fit_problem or "none"))
    for k, v in rows:
        print(f"{k}: {v}", flush=True)
    if write:
        append_section("Scaling sweep: the default ladder through the run manager (bench.scaling)", rows)
    return result
