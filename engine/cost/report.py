"""A run's report card (lesson 9) as plain data: everything a run recorded, what its arithmetic cost, and what the
same arithmetic would cost elsewhere.

`report_from_folder` reads what a run left on disk (engine.load.checkpoint's folder: summary.json, metrics.jsonl,
config.json) and adds the compute (engine.cost.flops: parameters, FLOPs per token, total FLOPs, achieved FLOP/s) and
the price of the same FLOPs on every chip of `data/accelerators.yaml` at an assumed utilisation (`price_elsewhere`).
The rest of the card is built on this `RunReport`: `report_format` writes its numbers, `report_tables` lays them out
as tables and SVG charts (one run, or two side by side), and `report_files` writes those as the Markdown and HTML
files a learner downloads; the page and both files draw the same tables, so a number reads the same in each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.cost.catalogue import accelerators
from engine.cost.flops import (
    FlopsPerToken,
    ParameterCount,
    RunCompute,
    count_parameters,
    flops_per_token,
    price_run,
    run_compute,
)
from engine.load import checkpoint
from engine.runs.run_owner import check_owner
from engine.runs.snapshot import snapshot_from_folder
from engine.transform.model import GPTConfig

DEFAULT_UTILISATION = 0.4  # a well-tuned large training run reaches 40-50% of the chips' peak (PaLM: 46%)


@dataclass(frozen=True)
class Evaluation:
    """One validation estimate: when it was taken and the losses at that moment."""

    step: int
    tokens: int
    elapsed_s: float
    train_loss: float | None  # the training batch's loss at that step (noisy)
    val_loss: float
    lr: float | None


@dataclass(frozen=True)
class Elsewhere:
    """The run's FLOPs on one catalogue chip at the report's utilisation."""

    accelerator: str  # its id in data/accelerators.yaml
    name: str
    precision: str  # the peak used: "16bit" (what training would use there) or "fp32" where no 16-bit peak is published
    peak_flops_per_s: float
    seconds: float
    dollars: float | None  # None: no price recorded for this chip
    energy_kwh: float | None  # None: no power figure
    price_date: str | None


@dataclass(frozen=True)
class RunReport:
    """Everything on a run's report card, as plain data."""

    run_dir: str
    label: str
    status: str
    message: str
    device: str  # the training process's sentence: "Training on CPU, 2 threads"
    precision: str  # "bfloat16" or "float32"
    tokenizer: str
    train_config: dict[str, Any]
    model_config: dict[str, Any]
    params_recorded: int | None  # as the run counted them (nanoGPT: without the position embeddings)
    parameters: ParameterCount
    steps: int
    tokens: int
    elapsed_s: float
    start_loss: float | None
    final_train_loss: float | None
    final_val_loss: float | None
    tokens_per_s: float | None  # wall clock, evaluations included (summary.json)
    step_tokens_per_s: float | None  # the training steps alone (the loop's smoothed rate at the last step)
    evaluations: list[Evaluation]
    train_curve: list[tuple[int, float]]  # every step's training-batch loss
    samples: list[tuple[int, str]]
    flops: FlopsPerToken
    compute: RunCompute
    utilisation: float
    elsewhere: list[Elsewhere] = field(default_factory=list)


def run_precision(device_sentence: str, dtype: str) -> str:
    """The sentence names bf16 whenever the run used it ("..., bf16" on CPU, "..., bfloat16" on CUDA).

    >>> run_precision("Training on CPU, 2 threads, bf16", "auto"), run_precision("Training on CPU, 1 thread", "auto")
    ('bfloat16', 'float32')
    """
    if "bf16" in device_sentence or "bfloat16" in device_sentence:
        return "bfloat16"
    if not device_sentence and dtype in ("float32", "bfloat16"):  # no sentence (an old folder): what was asked for
        return dtype
    return "float32"


def _model_config(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The model's shape: config.json's "model", else (an older folder) the checkpoint's."""
    known = {f.name for f in fields(GPTConfig)}
    model = config.get("model")
    if not isinstance(model, dict) and (run_dir / checkpoint.CKPT).exists():
        model = checkpoint.read_checkpoint(run_dir).get("model_config")
    if not isinstance(model, dict):
        raise ValueError(f"{run_dir} does not say what model it trained (no config.json with a model, no ckpt.pt)")
    return {k: v for k, v in model.items() if k in known}


def price_elsewhere(flops: float, utilisation: float = DEFAULT_UTILISATION) -> list[Elsewhere]:
    """`flops` on every catalogue chip (its 16-bit peak, or FP32 where it publishes none) at `utilisation`.

    >>> rows = price_elsewhere(3.6e12 * 0.4 * 3600, utilisation=0.4)  # one hour on a 3.6 TFLOP/s chip
    >>> [round(r.seconds) for r in rows if r.accelerator == "apple_m2_gpu"]
    [3600]
    """
    out = []
    for chip in accelerators():
        precision = "16bit" if chip.tflops_16bit else "fp32"
        peak = chip.tflops_16bit or chip.tflops_fp32
        if not peak:
            continue
        price = price_run(0, 0, chip, utilisation=utilisation, flops=flops, precision=precision)
        out.append(Elsewhere(chip.id, chip.name, precision, peak * 1e12, price.wall_hours * 3600, price.dollars,
                             price.energy_kwh, chip.price_date))
    return out


def report_from_folder(run_dir: Path | str, label: str = "", utilisation: float = DEFAULT_UTILISATION,
                       peak_flops_per_s: float | None = None, owner: str | None = None) -> RunReport:
    """Build the report card of the run saved in `run_dir` (finished, stopped, interrupted or diverged).

    `peak_flops_per_s`: this machine's measured peak (engine.cost.flops.probe_peak_flops); the card shows the model
    FLOPs utilisation only when it is given. Raises ValueError for a folder that holds no run. `owner`: the
    learner asking; PermissionError if the folder names another (engine.runs.run_owner). None for a script or an
    instructor's page, which check who asks themselves.
    """
    if owner is not None:
        check_owner(run_dir, owner, "read its report card")
    run_dir = Path(run_dir)
    snap = snapshot_from_folder(run_dir)
    config = checkpoint_config(run_dir)
    if not snap.metrics and snap.summary is None:
        raise ValueError(f"{run_dir} holds no run yet: nothing was saved there")
    model_config = _model_config(run_dir, config)
    gpt = GPTConfig(**model_config)
    summary = {**checkpoint.summarize_metrics(snap.metrics), **(snap.summary or {})}
    last_rate = next((r["tokens_per_s"] for r in reversed(snap.metrics) if r.get("tokens_per_s") is not None), None)
    compute = run_compute(gpt, {"tokens": summary.get("tokens") or 0, "tokens_per_s": last_rate,
                                "elapsed_s": summary.get("elapsed_s")}, peak_flops_per_s)
    evaluations = [Evaluation(r["step"], int(r.get("tokens") or 0), float(r.get("elapsed_s") or 0.0),
                              r.get("train_loss"), r["val_loss"], r.get("lr"))
                   for r in snap.metrics if r.get("val_loss") is not None]
    curve = [(r["step"], r["train_loss"]) for r in snap.metrics if r.get("train_loss") is not None]
    return RunReport(
        run_dir=str(run_dir), label=label or run_dir.name, status=str(snap.status), message=snap.message,
        device=snap.device_sentence, precision=run_precision(snap.device_sentence, snap.config.get("dtype", "auto")),
        tokenizer=str(config.get("tokenizer", "")), train_config=dict(snap.config), model_config=model_config,
        params_recorded=snap.params, parameters=count_parameters(gpt), steps=int(summary.get("steps") or 0),
        tokens=int(summary.get("tokens") or 0), elapsed_s=float(summary.get("elapsed_s") or 0.0),
        start_loss=summary.get("start_loss"), final_train_loss=summary.get("final_train_loss"),
        final_val_loss=summary.get("final_val_loss"), tokens_per_s=summary.get("tokens_per_s"),
        step_tokens_per_s=last_rate, evaluations=evaluations, train_curve=curve, samples=list(snap.samples),
        flops=flops_per_token(gpt), compute=compute, utilisation=utilisation,
        elsewhere=price_elsewhere(compute.flops, utilisation) if compute.flops > 0 else [],
    )


def checkpoint_config(run_dir: Path) -> dict[str, Any]:
    """config.json as a dict ({} when absent or unreadable)."""
    try:
        data = json.loads((run_dir / checkpoint.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
