"""The "Load" stage: a run's weights and everything needed to use them again, saved to a plain folder.

    runs/NAME/
        ckpt.pt         weights, optimizer state, step, RNG state, tokenizer (torch.save; loaded weights_only)
        config.json     the training config, the model shape, the device: readable in any editor
        metrics.jsonl   one JSON object per training step (loss, lr, grad norm, samples ...)
        summary.json    start and final loss, steps, speed: what a results page shows after a restart

Everything in ckpt.pt is tensors and plain Python containers, so it loads with `torch.load(weights_only=True)`,
which cannot run code hidden in a malicious file (unlike a full pickle).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from engine.model import GPT, GPTConfig
from engine.tokenization import Tokenizer, tokenizer_from_dict

CKPT = "ckpt.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


def _atomic_write(path: Path, write: Any) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file (rename is atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """A flat dict with NaN and infinity replaced by None, ready for json.dumps."""
    return {k: _json_safe(v) for k, v in record.items()}


def save_checkpoint(run_dir: Path | str, payload: dict[str, Any]) -> Path:
    """Save `payload` (weights, optimizer states, configs, tokenizer dict, step ...) as run_dir/ckpt.pt."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CKPT
    _atomic_write(path, lambda p: torch.save(payload, p))
    return path


def write_run_files(
    run_dir: Path | str, config: dict[str, Any], metrics: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    """The readable side of a run: config.json, metrics.jsonl and summary.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(run_dir / CONFIG, lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    lines = "".join(json.dumps({k: _json_safe(v) for k, v in r.items()}) + "\n" for r in metrics)
    _atomic_write(run_dir / METRICS, lambda p: p.write_text(lines))
    _atomic_write(run_dir / SUMMARY, lambda p: p.write_text(json.dumps({k: _json_safe(v) for k, v in summary.items()}, indent=2) + "\n"))


def read_checkpoint(run_dir: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict (for resuming). Raises FileNotFoundError with a plain message if absent."""
    path = Path(run_dir) / CKPT
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}: this run has not saved one yet.")
    return torch.load(path, map_location=map_location, weights_only=True)


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_checkpoint(
    run_dir: Path | str, device: str | torch.device = "cpu"
) -> tuple[GPT, Tokenizer, dict[str, Any], list[dict[str, Any]]]:
    """A trained model ready for sampling, plus its tokenizer, training config (a dict) and metrics.

    >>> model, tok, config, metrics = load_checkpoint("runs/my-run")      # doctest: +SKIP
    >>> ids = torch.tensor([tok.encode("ROMEO:")])
    >>> print(tok.decode(model.generate(ids, 100)[0].tolist()))
    """
    ckpt = read_checkpoint(run_dir, map_location=device)
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device)
    model.eval()
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    return model, tokenizer, dict(ckpt["train_config"]), list(ckpt.get("metrics", []))


def summarize_metrics(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers from a list of per-step records (see engine.loop.train_loop for the record's keys).

    >>> summarize_metrics([{"step": 0, "train_loss": 4.2, "val_loss": 4.2, "elapsed_s": 0.1},
    ...                    {"step": 1, "train_loss": 3.9, "val_loss": 3.95, "elapsed_s": 0.2, "tokens": 64}])["final_val_loss"]
    3.95
    """
    if not metrics:
        return {"start_loss": None, "final_train_loss": None, "final_val_loss": None, "steps": 0,
                "tokens": 0, "tokens_per_s": None, "elapsed_s": 0.0}
    first, last = metrics[0], metrics[-1]
    start = first.get("val_loss") if first.get("val_loss") is not None else first.get("train_loss")
    vals = [r for r in metrics if r.get("val_loss") is not None]
    final_train = last.get("train_eval_loss")
    if final_train is None:  # no end-of-run estimate (stopped early): average the last few batches
        recent = [r["train_loss"] for r in metrics[-10:] if r.get("train_loss") is not None and r["step"] > 0]
        final_train = sum(recent) / len(recent) if recent else None
    elapsed = last.get("elapsed_s") or 0.0
    tokens = last.get("tokens", 0)
    return {
        "start_loss": start,
        "final_train_loss": final_train,
        "final_val_loss": vals[-1]["val_loss"] if vals else None,
        "steps": last.get("step", 0),
        "tokens": tokens,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else None,  # wall clock, evaluation included
        "elapsed_s": elapsed,
    }
