"""One training run from start to saved folder: prepare, train, explain how it ended, save (the "Load" stage).

`run_job` is the whole life of a run, written once: the command line (`python -m engine.train`) and the training
process the course starts for each run (`python -m engine.runs.worker`) both call it, so a run saves and reports
the same way wherever it started. A failure is a status with a message a learner can read; alone it is returned,
but under torchrun it is raised (`RankFailed`) after rank 0 has written it, since a rank that returned would leave
the others waiting in a collective: the process ends with an error and torchrun (or Ray Train) ends the rest.

A run is saved while it trains, so a crash or a power cut loses seconds, not the run: at step 0, then at
evaluations at most every `CHECKPOINT_EVERY_S` seconds, ckpt.pt, metrics.jsonl, summary.json ("running") and a
timeline snapshot (engine.load.checkpoint); only rank 0 writes, with every rank's random state
(engine.train.rng, gathered at each evaluation). A save that fails during training (a full disk)
is reported (`on_event`) and training goes on, the last checkpoint intact (writes are atomic); a final save that
fails ends the run as "failed", saying why and which step the last good checkpoint holds.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from engine.load import checkpoint
from engine.train import rng
from engine.train.config import TrainConfig
from engine.train.distributed import DistInfo
from engine.train.evaluate import generate_sample
from engine.train.loop import TrainOutcome, train_loop
from engine.train.prepare import TrainState, prepare
from engine.train.status import RunStatus
from engine.transform.baseline import save_landmarks
from engine.transform.tokenization import Tokenizer

TIMELINE_GROWTH = 1.5  # a timeline snapshot at the first evaluation once the step has grown 1.5x since the last
CHECKPOINT_EVERY_S = 30.0  # save during training at most this often (at evaluations): a crash loses at most this


class RankFailed(RuntimeError):
    """A run under torchrun failed in this process (rank 0 has written why where it could): raised instead of
    returned, so that the process ends with an error and the job's other processes are ended with it."""

    def __init__(self, status: str, message: str, summary: dict[str, Any] | None):
        super().__init__(message)
        self.status, self.message, self.summary = status, message, summary


def _log(text: str) -> None:
    """Write to the server's log (stderr); a closed stderr (the server died) must not end the run."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def stop_message(reason: str | None, step: int, heartbeat_timeout: float) -> str:
    """What a learner reads about a run that stopped before its end."""
    if reason == "timeout":
        minutes = heartbeat_timeout / 60
        span = f"{minutes:g} minutes" if minutes >= 1 else f"{heartbeat_timeout:g} seconds"
        return (f"Nobody was watching this run for {span}, so it stopped itself at step {step} to free the "
                "machine. Its checkpoint is saved; you can resume it.")
    if reason == "terminate":
        return (f"This run's process was asked to end (SIGTERM: a shutdown, or `kill`), so it stopped at step "
                f"{step}. Its checkpoint is saved; you can resume it.")
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
    on_event: Callable[[dict[str, Any]], None] = lambda event: None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    finetune_from: Path | None = None,
    original_text: str | None = None,
) -> tuple[str, str, dict[str, Any] | None]:
    """Prepare, train and save one run; return (status, message, summary). A failure is a status; under torchrun
    it is raised as `RankFailed` (carrying the same three), so that no rank returns while another waits for it.

    `on_started` gets {"params", "device_sentence", "config", "vocab_size", "train_tokens"} once the model
    exists; `on_record` gets every metrics record, starting with the saved history when the run resumes a
    checkpoint; `on_event` gets {"event": "saved", "step"} after each save during training and
    {"event": "save_failed", "step", "message"} when one failed (the run goes on). Under torchrun only rank 0
    writes the run folder.

    `finetune_from` (a run folder) fine-tunes its model on `text` instead (engine.train.finetune), with `original_text`
    evaluated too when given; `on_started` then also gets "finetune" (its source and what fitting the text to
    the checkpoint's tokenizer replaced).
    """
    dist_info = dist_info or DistInfo()
    state: TrainState | None = None
    try:
        state = prepare(config, text, tokenizer, resume_from=resume_from, dist_info=dist_info,
                        finetune_from=finetune_from, original_text=original_text)
        info = {"params": state.model.num_params(), "device_sentence": state.device.sentence,
                "config": state.config.to_dict(),  # on resume, the checkpoint's model shape
                "vocab_size": state.tokenizer.vocab_size, "train_tokens": len(state.data.train)}
        if state.finetune is not None:
            info["finetune"] = state.finetune
        if dist_info.is_main:  # the counting models' losses: the lines the chart draws for this run to beat
            save_landmarks(run_dir, state.data.train, state.data.val, state.tokenizer.vocab_size,
                           "character" if state.tokenizer.kind == "char" else "token")
        on_started(info)
        for record in state.metrics:  # resumed: the history first
            on_record(record)
        saver = _PeriodicSaver(run_dir, checkpoint_every_s, on_event, dist_info.is_main)

        def publish(record: dict[str, Any]) -> None:
            on_record(record)
            if record["step"] == 0:  # the untrained model: the loop's hook starts after it, so save it here
                saver(state, record)

        outcome: TrainOutcome = train_loop(state, on_record=publish, stop_event=stop_event, on_checkpoint=saver)
        status, message, summary = outcome.status, outcome.message, outcome.summary
        if status == RunStatus.STOPPED:
            message = stop_message(stop_reason(), state.step, heartbeat_timeout)
            summary["message"] = message
        rng_states = rng.gather(state.generator, state.device, dist_info)  # every rank, at the same step
        if dist_info.is_main:
            try:
                save_run(state, TrainOutcome(status, message, summary), run_dir,
                         save_weights=status != RunStatus.DIVERGED, rng_states=rng_states)
            except OSError as err:
                status, message = RunStatus.FAILED, _final_save_failed(err, run_dir, state.step, saver.saved_step)
                summary.update(status=status, message=message)
                _log(f"training run in {run_dir}: {message}")
                with contextlib.suppress(OSError):  # the small files may still fit where the weights did not
                    _write_readable_files(state, summary, run_dir)
        return status, message, summary
    except Exception as err:  # noqa: BLE001 - a run's failure must not take its host down
        _log(f"training run in {run_dir} failed:\n{traceback.format_exc()}")
        message = f"The run could not continue: {err}"
        if not dist_info.enabled:
            return RunStatus.FAILED, message, None
        raise RankFailed(RunStatus.FAILED, *_rank_failed(err, state, run_dir, dist_info)) from err


def _collective_broke(err: Exception) -> bool:
    """Did a collective fail under this process (another process ended, or the collective timed out)? gloo
    raises a plain RuntimeError that names itself ("Connection closed by peer"), NCCL a DistError."""
    text = str(err).lower()
    return isinstance(err, torch.distributed.DistError) or "gloo" in text or "nccl" in text


def _rank_failed(err: Exception, state: TrainState | None, run_dir: Path,
                 dist_info: DistInfo) -> tuple[str, dict[str, Any] | None]:
    """What a failed process of a torchrun job reports: a message that says which process failed, and on rank 0
    a summary written into the run folder (status "failed") where the learner and the run manager read it; the
    last periodic checkpoint stays, so the run can be resumed from it."""
    if _collective_broke(err):
        message = (f"Another process of this run failed, so the run ended at step {state.step if state else 0}; "
                   f"its log says why ({(str(err).strip().splitlines() or [''])[0][:160]}).")
    else:
        message = f"The run could not continue: {err} (in process {dist_info.rank} of {dist_info.world_size})."
    if state is None or not dist_info.is_main:
        return message, None
    summary = checkpoint.summarize_metrics(state.metrics)
    summary.update(params=state.model.num_params(), device=state.device.sentence, status=RunStatus.FAILED,
                   message=message)
    try:
        _write_readable_files(state, summary, run_dir)
    except OSError as write_err:
        _log(f"training run in {run_dir}: could not write its failure: {write_err}")
    return message, summary


def _final_save_failed(err: OSError, run_dir: Path | str, step: int, saved_step: int | None) -> str:
    """The message of a run that trained but could not write its end: what failed and what is still on disk."""
    kept = (f"The last checkpoint that was saved is from step {saved_step}; you can resume from it."
            if saved_step is not None else "No checkpoint of it could be saved.")
    return f"The run trained to step {step} but {checkpoint.save_error_message(err, run_dir)}. {kept}"


class _PeriodicSaver:
    """The `on_checkpoint` hook of train_loop. At step 0, then at evaluations at most every `every_s` seconds, it
    saves the whole run folder (ckpt.pt with the optimizer state, to resume from). Between those, it adds a
    weights-only snapshot to the timeline whenever the step count has grown by `TIMELINE_GROWTH` since the last
    one (a few milliseconds each, plus a short sample), so even a one-minute run leaves a timeline worth
    scrubbing. Records marked "final" are left to the end-of-run save, which follows at once."""

    def __init__(self, run_dir: Path | str, every_s: float, on_event: Callable[[dict[str, Any]], None],
                 is_main: bool) -> None:
        self.run_dir, self.every_s, self.on_event, self.is_main = run_dir, every_s, on_event, is_main
        self.last_try: float | None = None
        self.saved_step: int | None = None  # the step the latest good ckpt.pt holds
        self.next_snapshot = 0  # the step from which the next timeline snapshot is due

    def __call__(self, state: TrainState, record: dict[str, Any]) -> None:
        if record.get("final") or record.get("val_loss") is None:
            return
        # every rank at every evaluation (a collective under torchrun), so rank 0 may save whenever its clock says
        rng_states = rng.gather(state.generator, state.device, state.dist)
        if not self.is_main:
            return
        now = time.monotonic()
        step = record["step"]
        full = self.last_try is None or now - self.last_try >= self.every_s
        if not full and step < self.next_snapshot:
            return
        try:
            if full:
                self.last_try = now
                save_run(state, None, self.run_dir, rng_states=rng_states)  # adds this step to the timeline too
            else:
                _add_to_timeline(state, record, Path(self.run_dir))
        except OSError as err:
            message = (f"{checkpoint.save_error_message(err, self.run_dir)} at step {step}; the run "
                       "keeps training and will try again at a later evaluation.")
            _log(f"training run in {self.run_dir}: {message}")
            self.on_event({"event": "save_failed", "step": step, "message": message})
            return
        self.next_snapshot = max(step + 1, math.ceil(step * TIMELINE_GROWTH))
        if full:
            self.saved_step = step
            self.on_event({"event": "saved", "step": step})


def save_run(state: TrainState, outcome: TrainOutcome | None, run_dir: Path | str, save_weights: bool = True,
             rng_states: dict[str, Any] | None = None) -> None:
    """Write the run folder (see engine.load.checkpoint): ckpt.pt, a timeline snapshot of the latest record,
    config.json, metrics.jsonl and summary.json. `outcome` None: the run is still training (status "running").
    `rng_states`: every rank's random state (engine.train.rng.gather, which under torchrun every rank must call);
    None: this process's alone, which is all there is outside torchrun.

    `save_weights` False (a divergence left NaN weights): no new weights are written and ckpt.pt is removed,
    since resuming a run that blew up would only blow up again; the timeline keeps its healthy snapshots, so
    a replay can still show the run up to the moment it diverged. Raises OSError when the folder cannot be
    written (each file is either replaced whole or left as it was)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_config = asdict(state.model.config)
    if save_weights:
        payload = {
            "model": state.weights(),
            "model_config": model_config,
            "optimizers": [opt.state_dict() for opt in state.optimizers],
            "train_config": state.config.to_dict(),
            "tokenizer": state.tokenizer.to_dict(),
            "step": state.step,
            "elapsed_s": state.metrics[-1]["elapsed_s"] if state.metrics else 0.0,
            "tokens": state.metrics[-1].get("tokens", 0) if state.metrics else 0,
            "rng": rng_states or rng.gather(state.generator, state.device, DistInfo()),
            "metrics": state.metrics,
        }
        if state.finetune is not None:  # a resumed fine-tune fits its text the same way again
            payload["finetune"] = state.finetune
        checkpoint.save_checkpoint(run_dir, payload)
        if state.metrics:
            _add_to_timeline(state, state.metrics[-1], run_dir)
    else:
        (run_dir / checkpoint.CKPT).unlink(missing_ok=True)
    if outcome is None:
        summary = checkpoint.summarize_metrics(state.metrics)
        summary.update(params=state.model.num_params(), device=state.device.sentence, status=RunStatus.RUNNING, message="")
    else:
        summary = outcome.summary
    _write_readable_files(state, summary, run_dir)


def _write_readable_files(state: TrainState, summary: dict[str, Any], run_dir: Path | str) -> None:
    config = {"train": state.config.to_dict(), "model": asdict(state.model.config), "tokenizer": state.tokenizer.kind,
              "device": state.device.sentence, "params": state.model.num_params()}
    if state.finetune is not None:
        config["finetune"] = state.finetune
    checkpoint.write_run_files(run_dir, config, state.metrics, summary)


def _add_to_timeline(state: TrainState, record: dict[str, Any], run_dir: Path) -> None:
    """Snapshot the weights as they are at `record` (weights only: a replay samples, it does not resume)."""
    sample = record.get("sample")
    if sample is None and state.dist.is_main:
        try:
            sample = generate_sample(state)  # its own seeded generator: the training's random draws are untouched
        except Exception:  # noqa: BLE001 - a snapshot without a sample is still worth keeping
            sample = None
    payload = {"model": state.weights(), "model_config": asdict(state.model.config),
               "tokenizer": state.tokenizer.to_dict(), "step": state.step}
    entry = {"step": state.step, "train_loss": record.get("train_loss"), "val_loss": record.get("val_loss"),
             "sample": sample, "elapsed_s": record.get("elapsed_s"), "tokens": record.get("tokens")}
    if record.get("val_loss_original") is not None:
        entry["val_loss_original"] = record["val_loss_original"]
    checkpoint.save_timeline_entry(run_dir, payload, entry)
