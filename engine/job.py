"""One training run from start to saved folder: prepare, train, explain how it ended, save (the "Load" stage).

`run_job` is the whole life of a run, and the one place it is written: the command line (`python -m
engine.train`) and the training process the course starts for each run (`python -m engine.worker`, followed by
the run manager in engine.runs) both call it, so a run saves and reports the same way wherever it was started.
It never raises: a failure is a status with a message a learner can read.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import checkpoint
from engine.config import TrainConfig
from engine.distributed import DistInfo
from engine.loop import TrainOutcome, train_loop
from engine.prepare import TrainState, prepare
from engine.tokenization import Tokenizer


def stop_message(reason: str | None, step: int, heartbeat_timeout: float) -> str:
    """What a learner reads about a run that stopped before its end."""
    if reason == "timeout":
        minutes = heartbeat_timeout / 60
        span = f"{minutes:g} minutes" if minutes >= 1 else f"{heartbeat_timeout:g} seconds"
        return (f"Nobody was watching this run for {span}, so it stopped itself at step {step} to free the "
                "machine. Its checkpoint is saved; you can resume it.")
    if reason == "orphan":
        return (f"The course server stopped while this run was training, so it stopped at step {step}. "
                "Its checkpoint is saved; you can resume it.")
    return f"Stopped at step {step}. Its checkpoint is saved; you can resume it."


def run_job(
    config: TrainConfig,
    text: str,
    tokenizer: Tokenizer | None,
    resume_from: Path | None,
    run_dir: Path,
    stop_event: threading.Event | None = None,
    stop_reason: Callable[[], str | None] = lambda: None,
    heartbeat_timeout: float = 300.0,
    on_started: Callable[[dict[str, Any]], None] = lambda info: None,
    on_record: Callable[[dict[str, Any]], None] = lambda record: None,
    dist_info: DistInfo | None = None,
) -> tuple[str, str, dict[str, Any] | None]:
    """Prepare, train and save one run; return (status, message, summary). Never raises: a failure is a status.

    `on_started` gets {"params", "device_sentence", "config", "vocab_size", "train_tokens"} once the model
    exists; `on_record` gets every metrics record, starting with the saved history when the run resumes a
    checkpoint. Under torchrun only rank 0 writes the run folder.
    """
    dist_info = dist_info or DistInfo()
    try:
        state = prepare(config, text, tokenizer, resume_from=resume_from, dist_info=dist_info)
        on_started({"params": state.model.num_params(), "device_sentence": state.device.sentence,
                    "config": state.config.to_dict(),  # on resume, the checkpoint's model shape
                    "vocab_size": state.tokenizer.vocab_size, "train_tokens": len(state.data.train)})
        for record in state.metrics:  # resumed: the history first
            on_record(record)
        outcome: TrainOutcome = train_loop(state, on_record=on_record, stop_event=stop_event)
        status, message, summary = outcome.status, outcome.message, outcome.summary
        if status == "stopped":
            message = stop_message(stop_reason(), state.step, heartbeat_timeout)
            summary["message"] = message
        if dist_info.is_main:
            save_run(state, TrainOutcome(status, message, summary), run_dir, save_weights=status != "diverged")
        return status, message, summary
    except Exception as err:  # noqa: BLE001 - a run's failure must not take its host down
        print(f"training run in {run_dir} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        return "failed", f"The run could not continue: {err}", None


def save_run(state: TrainState, outcome: TrainOutcome | None, run_dir: Path | str, save_weights: bool = True) -> None:
    """Write the run folder (see engine.checkpoint): ckpt.pt (unless `save_weights` is False, e.g. after a
    divergence left NaN weights), config.json, metrics.jsonl and summary.json."""
    run_dir = Path(run_dir)
    model_config = asdict(state.model.config)
    if save_weights:
        payload = {
            "model": state.model.state_dict(),
            "model_config": model_config,
            "optimizers": [opt.state_dict() for opt in state.optimizers],
            "train_config": state.config.to_dict(),
            "tokenizer": state.tokenizer.to_dict(),
            "step": state.step,
            "elapsed_s": state.metrics[-1]["elapsed_s"] if state.metrics else 0.0,
            "tokens": state.metrics[-1].get("tokens", 0) if state.metrics else 0,
            "rng": state.generator.get_state(),
            "metrics": state.metrics,
        }
        checkpoint.save_checkpoint(run_dir, payload)
    if outcome is None:
        summary = checkpoint.summarize_metrics(state.metrics)
        summary.update(params=state.model.num_params(), device=state.device.sentence, status="running", message="")
    else:
        summary = outcome.summary
    config = {"train": state.config.to_dict(), "model": model_config, "tokenizer": state.tokenizer.kind,
              "device": state.device.sentence, "params": state.model.num_params()}
    checkpoint.write_run_files(run_dir, config, state.metrics, summary)

