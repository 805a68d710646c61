"""One run model for the whole course: a snapshot of a run that the UI draws (its status is engine.train.status).

The run manager (engine.runs.manager) makes snapshots of the runs it follows; `snapshot_from_folder` makes the same kind of
snapshot from what a run left on disk (engine.load.checkpoint's folder), so a page draws a run the same way whether this
server process trained it or a server that has since been restarted did. The UI adds only the learner's name for
the run (ui.run_view); it keeps no copy of these fields.

    snap = snapshot_from_folder("runs/20260101-120000-my-run-abc123")
    snap.status            # RunStatus.INTERRUPTED: summary.json said "running" and nobody is training it now
    snap.resumable         # True if its ckpt.pt reads: RunManager.submit(..., resume_from=snap.run_dir)

`resumable(status, run_dir)` is the one rule for Resume, for the manager and for folders alike. Which old run
folders may go is engine.runs.retention's call.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.load import checkpoint
from engine.train.status import RESUMABLE, RunStatus


@dataclass(frozen=True)
class RunSnapshot:
    """One run at one moment, as the UI sees it: plain data, safe to keep and draw.

    `metrics` holds the per-step records (see engine.train.loop.train_loop); long live runs are thinned to about
    `RunManager.max_points` records, always keeping every evaluation and sample. Treat the dicts as read-only.
    The first five fields are positional so a test can write a snapshot by hand in one line.
    """

    run_id: str
    run_dir: str
    status: RunStatus
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[int, str]] = field(default_factory=list)  # (step, generated text)
    label: str = ""
    queue_position: int | None = None  # 1 = next to start; None unless queued
    starts_in_s: float | None = None  # while queued: about how long until it starts (engine.runs.fair_queue.forecast)
    device_sentence: str = ""  # "Training on CPU, 2 threads" (from the training process, once it has started)
    params: int | None = None
    message: str = ""  # plain-language explanation on divergence, failure, timeout, stop or interruption
    config: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None  # time.time() when training began
    eta_s: float | None = None  # seconds left, as the trainer estimates it
    created_at: float = 0.0
    finished_at: float | None = None
    summary: dict[str, Any] | None = None  # headline numbers, once the run has ended
    resumable: bool = False  # ended early with a readable checkpoint: it can continue from `checkpoint_step`
    checkpoint_step: int | None = None  # the step ckpt.pt holds, when the folder has one
    gpu: str | None = None  # the GPU the manager gave this run ("cuda:1"), when there are several
    # a fine-tune (engine.train.finetune): {"from": run folder, "from_step", "replaced_chars", "total_chars",
    # "replaced_fraction", "replacement", "unknown_chars": {char: count}, "distinct_unknown"}; None for other runs
    finetune: dict[str, Any] | None = None
    save_warning: str | None = None  # the latest mid-run checkpoint that could not be saved (the run trains on)
    processes: int = 1  # processes that train it together (torchrun, data parallel: engine.runs.ranks)

    def __post_init__(self) -> None:
        # written by hand or read from an older folder, a status may arrive as a plain string: keep the enum
        object.__setattr__(self, "status", RunStatus.parse(self.status, RunStatus.STOPPED))

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def step(self) -> int:
        """The newest step (thinning always keeps the newest records)."""
        return self.metrics[-1]["step"] if self.metrics else 0

    @property
    def evals(self) -> list[tuple[int, float]]:
        return [(r["step"], r["val_loss"]) for r in self.metrics if r.get("val_loss") is not None]

    @property
    def evals_original(self) -> list[tuple[int, float]]:
        """A fine-tune's loss on the corpus its model learned first, at each evaluation ([] for other runs)."""
        return [(r["step"], r["val_loss_original"]) for r in self.metrics if r.get("val_loss_original") is not None]

    @property
    def start_val_loss(self) -> float | None:
        evals = self.evals
        return evals[0][1] if evals and evals[0][0] == 0 else None

    @property
    def final_val_loss(self) -> float | None:
        evals = self.evals
        return evals[-1][1] if evals else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.metrics[-1].get("tokens_per_s") if self.metrics else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # absent, or half-written by a process killed mid-write (writes are atomic, but
        return None  # a folder copied by hand may not be)


@functools.lru_cache(maxsize=256)
def _read_checkpoint_head(path: str, mtime_ns: int, size: int) -> tuple[bool, int | None]:
    """(whether a ckpt.pt reads as a checkpoint, the step it names). Memory-mapped, so the tensors' bytes stay on
    disk and only the small pickled part is parsed, once per version of the file (`mtime_ns`, `size`)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - truncated, not a zip, not a checkpoint: whatever it is, it does not read
        return False, None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        return False, None
    step = ckpt.get("step")
    return True, int(step) if isinstance(step, int) else None


def _checkpoint_head(run_dir: Path | str) -> tuple[bool, int | None]:
    path = Path(run_dir) / checkpoint.CKPT
    try:
        stat = path.stat()
    except OSError:
        return False, None
    return _read_checkpoint_head(str(path), stat.st_mtime_ns, stat.st_size)


def saved_step(run_dir: Path | str) -> int | None:
    """The step the run folder's checkpoint holds, or None without a readable one. From the checkpoint itself
    (memory-mapped and cached, so its megabytes of weights are not read), else from summary.json."""
    run_dir = Path(run_dir)
    readable, step = _checkpoint_head(run_dir)
    if not readable:
        return None
    if step is not None:
        return step
    summary = _read_json(run_dir / checkpoint.SUMMARY) or {}
    if isinstance(summary.get("steps"), int):
        return summary["steps"]
    metrics = checkpoint.read_metrics(run_dir)
    return metrics[-1]["step"] if metrics else 0


def resumable(status: str, run_dir: Path | str) -> bool:
    """Whether Resume can continue this run: it ended early (engine.train.status.RESUMABLE: stopped, interrupted
    or failed) and its folder holds a checkpoint that reads. A finished run has spent its budget, a diverged one
    has no good weights: never."""
    return RunStatus.parse(status, RunStatus.FINISHED) in RESUMABLE and saved_step(run_dir) is not None


def interrupted_message(step: int | None) -> str:
    if step is None:
        return ("The course server stopped while this run was training, before it could save anything. "
                "Start a new run: it takes a minute.")
    return (f"The course server stopped while this run was training. Its checkpoint from step {step:,} is saved: "
            "press Resume to continue from there.")


def snapshot_from_folder(run_dir: Path | str, run_id: str = "", label: str = "") -> RunSnapshot:
    """A run read back from its folder, for a server that did not train it (after a restart).

    summary.json's status wins; "running" there means the process that wrote it is gone (the server was killed
    mid-run), so the run is INTERRUPTED, resumable if its checkpoint reads (`resumable`). Older folders without
    summary.json count as stopped; a folder with nothing in it (the server died before the first save) as interrupted.
    """
    run_dir = Path(run_dir)
    metrics = checkpoint.read_metrics(run_dir)
    summary = _read_json(run_dir / checkpoint.SUMMARY)
    config = _read_json(run_dir / checkpoint.CONFIG) or {}
    step = saved_step(run_dir)
    if summary is None:
        status = RunStatus.STOPPED if metrics else RunStatus.INTERRUPTED
        message = "" if metrics else interrupted_message(None)
    else:
        status = RunStatus.parse(summary.get("status"), RunStatus.STOPPED)
        message = summary.get("message") or ""
        if status.active:  # nobody is training it now: the writer died
            status, message = RunStatus.INTERRUPTED, interrupted_message(step)
    samples = [(r["step"], r["sample"]) for r in metrics if "sample" in r]
    finished_at = (run_dir / checkpoint.SUMMARY).stat().st_mtime if summary is not None else None
    return RunSnapshot(
        run_id=run_id, run_dir=str(run_dir), status=status, metrics=metrics, samples=samples, label=label,
        device_sentence=(summary or {}).get("device") or config.get("device", ""),
        params=(summary or {}).get("params") or config.get("params"), message=message,
        config=config.get("train", {}), finished_at=finished_at, summary=summary,
        resumable=status in RESUMABLE and step is not None, checkpoint_step=step,
        finetune=config.get("finetune"), processes=int((summary or {}).get("processes") or 1),
    )
