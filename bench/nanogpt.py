"""Throughput against nanoGPT: `python -m bench nanogpt --nanogpt PATH` trains nanoGPT's README CPU
configuration (4 layers, 4 heads, width 128, batch 12, context 64, no dropout) with nanoGPT's own train.py and
with this engine, in pairs, on this machine, and appends tokens per second of both to docs/benchmarks.md.

PATH is a checkout of github.com/karpathy/nanoGPT (the course never downloads anything at run time). Its train.py
runs as its README says for a CPU, in a temporary copy whose data/shakespeare_char/ its own prepare.py builds from
this repository's tiny Shakespeare. Compared: the median milliseconds per iteration each prints or records, so the
evaluations both make do not decide it and a busy moment moves one median less than a total would. Each pair runs
both back to back, the order alternating, since this shared machine's speed drifts from minute to minute by more
than the difference measured. The engine runs twice per pair: with AdamW, nanoGPT's optimizer (the like-for-like
figure), and with Muon, its default.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import paths
from bench.report import append_section
from engine.train.config import TrainConfig
from engine.transform.model import GPTConfig
from paths import DEFAULT_CORPUS

TOKENS_PER_ITER = 12 * 64  # batch 12 x context 64
README_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
               "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
               "--n_embd=128", "--dropout=0.0"]
NANOGPT_FILES = ["train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py",
                 "data/shakespeare_char/prepare.py"]
ITER_LINE = re.compile(r"^iter (\d+): loss [\d.naif]+, time ([\d.]+)ms")
TARGET_RATIO = 1.2


def readme_config(optimizer: str, steps: int) -> TrainConfig:
    """nanoGPT's README CPU configuration as a TrainConfig (its shakespeare_char settings for the rest)."""
    return TrainConfig(model=GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0), batch_size=12,
                       optimizer=optimizer, lr=1e-3, beta2=0.99, warmup_steps=100, max_steps=steps,
                       time_budget=None, eval_interval=250, eval_batches=20, final_eval_batches=20,
                       sample_interval=0)


def prepare_nanogpt(nanogpt: Path, work: Path) -> Path:
    """A copy of nanoGPT's files in `work`, with its character data prepared from our tiny Shakespeare."""
    for name in NANOGPT_FILES:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nanogpt / name, work / name)
    data = work / "data" / "shakespeare_char"
    shutil.copy2(DEFAULT_CORPUS, data / "input.txt")  # present: prepare.py downloads nothing
    subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)
    return work


def nanogpt_ms(work: Path, steps: int) -> list[float]:
    """Run nanoGPT's train.py for `steps` iterations; the milliseconds of every iteration after the first."""
    out = subprocess.run([sys.executable, "train.py", *README_ARGS, f"--max_iters={steps}",
                          f"--lr_decay_iters={steps}", "--out_dir=out"], cwd=work, check=True, capture_output=True,
                         text=True).stdout
    times = [(int(m.group(1)), float(m.group(2))) for m in map(ITER_LINE.match, out.splitlines()) if m]
    return [ms for it, ms in times if it > 0]


def engine_ms(optimizer: str, steps: int) -> tuple[list[float], str]:
    """The engine on the same configuration, in a fresh process as nanoGPT gets: per-step milliseconds and the
    device sentence (which says the precision it measured to be faster)."""
    code = ("import json, sys; from bench.nanogpt import _engine_run; "
            f"print(json.dumps(_engine_run({optimizer!r}, {steps})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=paths.ROOT, check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["ms"], result["device"]


def _engine_run(optimizer: str, steps: int) -> dict[str, Any]:
    from engine.train.loop import train_loop
    from engine.train.prepare import prepare

    text = DEFAULT_CORPUS.read_text(encoding="utf-8")
    state = prepare(readme_config(optimizer, steps), text)
    records: list[dict[str, Any]] = []
    train_loop(state, on_record=records.append)
    elapsed = [r["elapsed_s"] for r in records]
    ms = [1000 * (b - a) for a, b in zip(elapsed[1:], elapsed[2:], strict=False)]  # steps 2.. (step 1: warm-up)
    return {"ms": ms, "device": state.device.sentence}


def run(nanogpt: Path, steps: int = 300, pairs: int = 3, write: bool = True) -> dict[str, Any]:
    """`pairs` alternating pairs of nanoGPT's train.py and the engine (AdamW, then Muon); medians per pair."""
    nanogpt = Path(nanogpt)
    missing = [n for n in NANOGPT_FILES if not (nanogpt / n).is_file()]
    if missing:
        raise SystemExit(f"{nanogpt} is not a nanoGPT checkout (missing {', '.join(missing)}); "
                         "clone github.com/karpathy/nanoGPT and pass its folder with --nanogpt")
    rows: list[tuple[str, str]] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="nanogpt-") as tmp:
        work = prepare_nanogpt(nanogpt, Path(tmp))
        device = ""
        for i in range(pairs):
            order = ["nanogpt", "engine"] if i % 2 == 0 else ["engine", "nanogpt"]
            med: dict[str, float] = {}
            for who in order:
                if who == "nanogpt":
                    med["nanogpt"] = statistics.median(nanogpt_ms(work, steps))
                else:
                    for opt in ("adamw", "muon"):
                        ms, device = engine_ms(opt, steps)
                        med[opt] = statistics.median(ms)
            tps = {k: TOKENS_PER_ITER * 1000 / v for k, v in med.items()}
            ratios.append(tps["adamw"] / tps["nanogpt"])
            rows.append((f"pair {i + 1} ({' first, '.join(order)} second): tokens/s nanoGPT / engine AdamW / "
                         "engine Muon", f"{tps['nanogpt']:,.0f} / {tps['adamw']:,.0f} / {tps['muon']:,.0f} "
                         f"({tps['adamw'] / tps['nanogpt']:.2f}x, {tps['muon'] / tps['nanogpt']:.2f}x)"))
            print(rows[-1], flush=True)
    ratio = statistics.median(ratios)
    rows += [("configuration", f"nanoGPT README CPU: 4 layers, 4 heads, n_embd 128, batch 12, context 64, "
                               f"{steps} iterations, median ms per iteration"),
             ("engine device (its precision measured on this shape)", device),
             (f"median ratio, engine AdamW / nanoGPT train.py (target >= {TARGET_RATIO})", f"{ratio:.2f}x")]
    if write:
        append_section("Throughput against nanoGPT's train.py (bench.nanogpt)", rows)
    return {"ratio": ratio, "rows": rows}
