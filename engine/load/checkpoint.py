"""The "Load" stage: a run's weights and everything needed to use them again, saved to a plain folder.

    runs/NAME/
        ckpt.pt         the latest: weights, optimizer state, step, RNG state, tokenizer (to resume from)
        config.json     the training config, the model shape, the device: readable in any editor
        metrics.jsonl   one JSON object per training step (loss, lr, grad norm, samples ...)
        summary.json    start and final loss, steps, speed, status: what a results page shows after a restart
        timeline/       weights-only snapshots spread over training; index.json lists them (step, losses, sample)

All of it is rewritten while the run trains (engine.train.job), each file atomically (engine.files), so a crash
loses at most the last few seconds and a reader never sees half a file. A .pt file holds only tensors and plain
containers, so it loads with `torch.load(weights_only=True)`, which cannot run code hidden in a malicious file.
"""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path
from typing import Any

import torch

from engine.files import write_atomically, write_text
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import Tokenizer, tokenizer_from_dict

CKPT = "ckpt.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
TIMELINE = "timeline"
TIMELINE_INDEX = "index.json"
TIMELINE_MAX = 8  # snapshots kept besides the latest: enough to scrub through, few enough to stay small on disk


def save_error_message(err: OSError, run_dir: Path | str) -> str:
    """What a learner reads when a run folder cannot be written: the cause in plain words, not an errno.

    >>> save_error_message(OSError(errno.ENOSPC, "No space left on device"), "runs/a")
    'could not save: disk full (runs/a)'
    >>> save_error_message(PermissionError(errno.EACCES, "Permission denied"), "runs/a")
    'could not save: runs/a is not writable'
    """
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"could not save: disk full ({run_dir})"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"could not save: {run_dir} is not writable"
    return f"could not save to {run_dir}: {err.strerror or err}"


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
    write_atomically(path, lambda tmp: torch.save(payload, tmp))
    return path


def write_run_files(
    run_dir: Path | str, config: dict[str, Any], metrics: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    """The readable side of a run: config.json, metrics.jsonl and summary.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / CONFIG, json.dumps(config, indent=2) + "\n")
    lines = "".join(json.dumps(json_safe(r)) + "\n" for r in metrics)
    write_text(run_dir / METRICS, lines)
    write_text(run_dir / SUMMARY, json.dumps(json_safe(summary), indent=2) + "\n")


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
    """A trained model ready for sampling, plus its tokenizer, training config (a dict) and metrics:

        model, tok, config, metrics = load_checkpoint("runs/my-run")
        ids = torch.tensor([tok.encode("ROMEO:")])
        print(tok.decode(model.generate(ids, 100)[0].tolist()))
    """
    ckpt = read_checkpoint(run_dir, map_location=device)
    model = GPT(GPTConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device)
    model.eval()
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    return model, tokenizer, dict(ckpt["train_config"]), list(ckpt.get("metrics", []))


def summarize_metrics(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers from a list of per-step records (see engine.train.loop.train_loop for the record's keys).

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
    summary: dict[str, Any] = {
        "start_loss": start,
        "final_train_loss": final_train,
        "final_val_loss": vals[-1]["val_loss"] if vals else None,
        "steps": last.get("step", 0),
        "tokens": tokens,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else None,  # wall clock, evaluation included
        "elapsed_s": elapsed,
    }
    originals = [r["val_loss_original"] for r in vals if r.get("val_loss_original") is not None]
    if originals:  # a fine-tune: the corpus it learned first, at its first and its last evaluation
        summary.update(start_loss_original=originals[0], final_val_loss_original=originals[-1])
    return summary


# ---- the timeline: a few snapshots spread over training --------------------------------------------------


def timeline_keep(steps: list[int], max_kept: int = TIMELINE_MAX) -> list[int]:
    """Which snapshots a run keeps: its first (step 0), its latest, and at most `max_kept - 1` between them,
    the ones nearest to points spaced evenly on a log scale (geometric spacing: 10, 50, 220 ...). A model
    changes fastest early, so a replay wants many early snapshots and few late ones; and the count stays
    bounded however long the run trains.

    >>> timeline_keep(list(range(0, 1001, 10)), max_kept=4)
    [0, 10, 50, 220, 1000]
    >>> timeline_keep([0, 20, 40])
    [0, 20, 40]
    """
    steps = sorted(set(steps))
    if len(steps) <= max_kept + 1:
        return steps
    first, latest, middle = steps[0], steps[-1], steps[1:-1]  # every middle step is > first >= 0
    keep = {first, latest}
    lo, n = middle[0], max_kept - 1
    for i in range(n):
        target = lo * (latest / lo) ** (i / n)
        best = min((s for s in middle if s not in keep), key=lambda s: abs(math.log(s / target)))
        keep.add(best)
    return sorted(keep)


def timeline_file(step: int) -> str:
    """The snapshot file's name for a step, sortable by name: `timeline_file(100)` -> 'ckpt-000100.pt'."""
    return f"ckpt-{step:06d}.pt"


def save_timeline_entry(run_dir: Path | str, payload: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Add one snapshot (`payload`: model weights, model_config, tokenizer, step) to run_dir/timeline with its
    index `entry` (step, losses, sample ...), then drop the snapshots `timeline_keep` no longer wants.

    The index is rewritten before any file is removed, so it never names a missing file. Returns the index."""
    folder = Path(run_dir) / TIMELINE
    folder.mkdir(parents=True, exist_ok=True)
    step = int(entry["step"])
    name = timeline_file(step)
    write_atomically(folder / name, lambda tmp: torch.save(payload, tmp))
    entries = [e for e in list_timeline(run_dir) if e["step"] != step] + [{**json_safe(entry), "file": name}]
    keep = set(timeline_keep([e["step"] for e in entries]))
    kept = sorted((e for e in entries if e["step"] in keep), key=lambda e: e["step"])
    write_text(folder / TIMELINE_INDEX, json.dumps(kept, indent=1) + "\n")
    for e in entries:
        if e["step"] not in keep:
            try:
                (folder / e["file"]).unlink()
            except OSError:
                pass  # a leftover file wastes a little disk; the index no longer names it
    return kept


def list_timeline(run_dir: Path | str) -> list[dict[str, Any]]:
    """The run's snapshots, oldest first, read from timeline/index.json without loading any weights.

    Each entry: step, train_loss, val_loss, sample (text or None), elapsed_s, tokens, file (its name inside
    run_dir/timeline). Empty for a run without a timeline (an older run, or one that never got to save).
    Entries whose file is missing are left out, so every entry listed can be loaded."""
    folder = Path(run_dir) / TIMELINE
    try:
        entries = json.loads((folder / TIMELINE_INDEX).read_text())
    except (OSError, ValueError):
        return []
    return sorted((e for e in entries if (folder / e.get("file", "")).is_file()), key=lambda e: e["step"])


def load_timeline_model(run_dir: Path | str, step: int, device: str | torch.device = "cpu") -> tuple[GPT, Tokenizer]:
    """The model as it was at `step` (one of the steps `list_timeline` lists), ready for sampling, and its
    tokenizer. Raises FileNotFoundError with a plain message for a step the timeline does not hold."""
    folder = Path(run_dir) / TIMELINE
    path = folder / timeline_file(step)
    if not path.is_file():
        held = [e["step"] for e in list_timeline(run_dir)]
        raise FileNotFoundError(f"{run_dir} has no timeline snapshot at step {step}; it holds steps {held}.")
    snap = torch.load(path, map_location=device, weights_only=True)
    model = GPT(GPTConfig.from_dict(snap["model_config"]))
    model.load_state_dict(snap["model"])
    model.to(device)
    model.eval()
    return model, tokenizer_from_dict(snap["tokenizer"])
