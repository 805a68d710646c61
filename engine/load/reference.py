"""The course's reference model: a real run of this engine, shipped in data/reference/, for every view of the inside
of a model (embeddings over training, attention, next-token probabilities) when the learner has no run of their own.

A learner who skipped the training lesson should still see a real model at once, not a made-up one. `build` trains
the `lesson` preset on tiny Shakespeare deterministically (REFERENCE_TRAIN_ARGS: a fixed step count, float32, an
evaluation every 50 steps so the timeline is dense enough to scrub) and ships the run folder in float16, without
the optimizer and RNG state only resuming needs, with REFERENCE_TIMELINE snapshots and a README.md that records
the command, date, engine commit, final loss and size. Every reader of a run folder loads it as it loads a
learner's run, into float32 models; only resuming it is not possible. docs/architecture.md ("The reference
model") says why it is shaped so.

    .venv/bin/python -m engine.load.reference build      # retrain and rewrite data/reference/ (a few minutes on a CPU)
    .venv/bin/python -m engine.load.reference check      # the shipped model's validation loss against the recorded one
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

import paths
from engine.load import checkpoint
from engine.train.config import TrainConfig
from engine.train.status import RunStatus
from engine.transform.data import TextDataset
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

REFERENCE_DIR = paths.REFERENCE_DIR
REFERENCE_STEPS = 750  # a lesson-length run, fixed so that the build is deterministic
REFERENCE_TRAIN_ARGS = [  # the `python -m engine.train` arguments of the reference run (its --out is a temp dir)
    "--preset", "lesson", "--corpus", "data/tinyshakespeare.txt", "--max-steps", str(REFERENCE_STEPS),
    "--dtype", "float32", "--set", "eval_interval=50",
]
REFERENCE_TIMELINE = 6  # snapshots shipped: step 0, the final step and 4 log-spaced between
SHIPPED_DTYPE = torch.float16
SIZE_LIMIT = 9_000_000  # bytes: small enough to keep in the repository; `check` fails a folder over it
README = "README.md"
DROPPED = ("optimizers", "rng")  # ckpt.pt keys only resuming needs


def half_weights(state: dict[str, torch.Tensor], dtype: torch.dtype = SHIPPED_DTYPE) -> dict[str, torch.Tensor]:
    """A state dict with its floating-point tensors in `dtype`. Tensors that shared memory still share it (the
    tied token embedding and output layer are saved once, not twice).

    >>> w = torch.ones(2, 2)
    >>> half = half_weights({"wte": w, "lm_head": w, "count": torch.tensor([3])})
    >>> half["wte"].dtype, half["wte"] is half["lm_head"], half["count"].dtype
    (torch.float16, True, torch.int64)
    """
    converted: dict[tuple[Any, ...], torch.Tensor] = {}
    out = {}
    for name, t in state.items():
        if not t.is_floating_point():
            out[name] = t
            continue
        key = (t.data_ptr(), tuple(t.shape), t.stride())
        if key not in converted:
            half = t.detach().to(dtype)
            if not torch.isfinite(half).all():
                raise ValueError(f"{name} does not fit in {dtype}: it holds values out of its range")
            converted[key] = half
        out[name] = converted[key]
    return out


def export_run(run_dir: Path | str, out_dir: Path | str, timeline_kept: int = REFERENCE_TIMELINE,
               dtype: torch.dtype = SHIPPED_DTYPE) -> Path:
    """Copy a finished run folder to `out_dir` in the shipped form: ckpt.pt without optimizer or RNG state and
    with its weights in `dtype`, config.json, metrics.jsonl, summary.json, and `timeline_kept` timeline snapshots
    (the first, the last, and log-spaced ones between, as `checkpoint.timeline_keep` chooses) in `dtype`.
    `out_dir` is replaced whole (built beside it, then renamed). Returns `out_dir`."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if timeline_kept < 2:
        raise ValueError("timeline_kept must be at least 2: the first and the last snapshot")
    ckpt = checkpoint.read_checkpoint(run_dir)
    tmp = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / checkpoint.TIMELINE).mkdir(parents=True)
    payload = {k: v for k, v in ckpt.items() if k not in DROPPED}
    payload["model"] = half_weights(ckpt["model"], dtype)
    payload["weights_dtype"] = str(dtype).removeprefix("torch.")
    torch.save(payload, tmp / checkpoint.CKPT)
    for name in (checkpoint.CONFIG, checkpoint.METRICS, checkpoint.SUMMARY):
        shutil.copy2(run_dir / name, tmp / name)
    entries = checkpoint.list_timeline(run_dir)
    keep = set(checkpoint.timeline_keep([e["step"] for e in entries], max_kept=timeline_kept - 1))
    kept = [e for e in entries if e["step"] in keep]
    for e in kept:
        snap = torch.load(run_dir / checkpoint.TIMELINE / e["file"], map_location="cpu", weights_only=True)
        snap["model"] = half_weights(snap["model"], dtype)
        torch.save(snap, tmp / checkpoint.TIMELINE / e["file"])
    (tmp / checkpoint.TIMELINE / checkpoint.TIMELINE_INDEX).write_text(json.dumps(kept, indent=1) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def folder_bytes(folder: Path | str) -> int:
    """The bytes of every file under `folder` (what a clone of the repository carries for it)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def engine_commit() -> str:
    """The repository's HEAD commit, marked when engine/ has uncommitted changes; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "engine"], cwd=paths.ROOT).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (engine/ had uncommitted changes)" if dirty else "")


def build(out_dir: Path | str = REFERENCE_DIR, train_args: list[str] | None = None,
          timeline_kept: int = REFERENCE_TIMELINE, command: str | None = None) -> dict[str, Any]:
    """Train the reference run (`python -m engine.train` with `train_args`, into a temporary folder), export it
    to `out_dir` (`export_run`) and write its README.md. Returns the training command's result (its JSON line).
    Raises RuntimeError if the run did not finish."""
    from engine.train import cli as train  # late: only building needs the command line's argument handling

    train_args = list(REFERENCE_TRAIN_ARGS if train_args is None else train_args)
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="reference-run-") as work:
        result = train.main([*train_args, "--out", work])
        if result["status"] != RunStatus.FINISHED:
            raise RuntimeError(f"the reference run ended {result['status']}: {result['message']}")
        export_run(work, out_dir, timeline_kept)
    _write_readme(out_dir, train_args, command or "python -m engine.load.reference build", result)
    return result


def _write_readme(out_dir: Path, train_args: list[str], command: str, result: dict[str, Any]) -> None:
    steps = [e["step"] for e in checkpoint.list_timeline(out_dir)]
    config = json.loads((out_dir / checkpoint.CONFIG).read_text())
    rows = [
        f"- made by: `{command}` (run from the repository root), which trains with\n"
        f"  `python -m engine.train {' '.join(train_args)} --out <temp dir>` and exports the run with "
        "`engine.load.reference.export_run`",
        f"- date: {datetime.date.today().isoformat()}",
        f"- engine commit: {engine_commit()}",
        f"- device: {result.get('device')}; optimizer used: {config['train']['optimizer']} "
        "(the lesson preset: Muon for the hidden matrices, AdamW for the rest)",
        f"- final validation loss: {result['val_loss']:.4f} ({config['train']['final_eval_batches']} batches; training loss {result['train_loss']:.4f}) "
        f"after {result['steps']} steps, {result['params']:,} parameters",
        f"- timeline steps: {steps}",
    ]
    head = ("# The reference model\n\nThe model the course shows when a learner has no run of their own "
            "(docs/architecture.md, \"The reference model\", says why it is shaped so). Weights in float16, no optimizer state.\n\n")
    text = ""
    for _ in range(3):  # the size line counts this file too: settle it
        size = folder_bytes(out_dir) - ((out_dir / README).stat().st_size if (out_dir / README).exists() else 0)
        text = head + "\n".join([*rows, f"- size: {size + len(text.encode()):,} bytes (limit {SIZE_LIMIT:,})"]) + "\n"
        (out_dir / README).write_text(text)


# ---- what the rest of the engine uses ------------------------------------------------------------------


def reference_run_dir() -> Path:
    """The shipped reference run folder (data/reference/)."""
    return REFERENCE_DIR


def run_to_show(learner_run: Path | str | None = None) -> Path:
    """The run folder a view of a model's inside should read: the learner's own run when it holds weights (a
    final or periodic checkpoint, or a timeline snapshot), else the reference run.

    >>> run_to_show(None) == reference_run_dir()
    True
    >>> run_to_show("runs/no-such-run") == reference_run_dir()
    True
    """
    if learner_run is not None:
        folder = Path(learner_run)
        if (folder / checkpoint.CKPT).is_file() or checkpoint.list_timeline(folder):
            return folder
    return REFERENCE_DIR


def load_reference(device: str | torch.device = "cpu") -> tuple[GPT, Tokenizer, dict[str, Any], list[dict[str, Any]]]:
    """The reference model (float32, eval mode), its tokenizer, training config and metrics: what
    `checkpoint.load_checkpoint` returns for a learner's run."""
    model, tok, config, metrics = checkpoint.load_checkpoint(REFERENCE_DIR, device)
    return model, tok, config, metrics or checkpoint.read_metrics(REFERENCE_DIR)


def list_timeline(run_dir: Path | str | None = None) -> list[dict[str, Any]]:
    """`checkpoint.list_timeline` of `run_dir`, the reference run by default."""
    return checkpoint.list_timeline(REFERENCE_DIR if run_dir is None else run_dir)


def load_timeline_model(step: int, run_dir: Path | str | None = None,
                        device: str | torch.device = "cpu") -> tuple[GPT, Tokenizer]:
    """`checkpoint.load_timeline_model` of `run_dir` (the reference run by default): a float32 model as it was at
    `step`, and its tokenizer."""
    return checkpoint.load_timeline_model(REFERENCE_DIR if run_dir is None else run_dir, step, device)


@torch.no_grad()
def validation_loss(model: GPT, data: TextDataset, config: TrainConfig | dict[str, Any], n_batches: int) -> float:
    """Mean loss over the first `n_batches` validation batches that engine.train.evaluate.estimate_loss draws (the same
    seed, so with `config.final_eval_batches` batches it measures what a run's final val_loss measured)."""
    cfg = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    g = torch.Generator().manual_seed(cfg.seed + 10_000 + 1)  # estimate_loss's val generator at rank 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(n_batches):
        x, y = data.get_batch("val", cfg.batch_size, cfg.model.block_size, g, device)
        total += float(model(x, y)[1])
    model.train(was_training)
    return total / n_batches


def check(run_dir: Path | str = REFERENCE_DIR, corpus: Path | str | None = None) -> dict[str, float]:
    """The shipped model's validation loss, measured again on the final evaluation's batches, beside the one its
    run recorded (they differ only by the float16 rounding of the weights)."""
    run_dir = Path(run_dir)
    model, tok, config, _ = checkpoint.load_checkpoint(run_dir)
    summary = json.loads((run_dir / checkpoint.SUMMARY).read_text())
    text = Path(corpus or paths.DEFAULT_CORPUS).read_text(encoding="utf-8")
    cfg = TrainConfig.from_dict(config)
    measured = validation_loss(model, TextDataset(text, tok), cfg, cfg.final_eval_batches)
    return {"recorded": summary["final_val_loss"], "measured": measured, "bytes": folder_bytes(run_dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.load.reference", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "check"])
    parser.add_argument("--out", type=Path, default=REFERENCE_DIR, help="the folder to write or check")
    args = parser.parse_args(argv)
    if args.action == "build":
        suffix = "" if args.out == REFERENCE_DIR else f" --out {args.out}"
        build(args.out, command="python -m engine.load.reference build" + suffix)
    result = check(args.out)
    print(json.dumps(result))
    return 0 if result["bytes"] < SIZE_LIMIT and abs(result["measured"] - result["recorded"]) < 0.02 else 1


if __name__ == "__main__":
    sys.exit(main())
