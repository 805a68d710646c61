"""How one run trains for the run manager: in a thread of this process, or in a worker process it follows.

`RunRecord` is the manager's mutable record of a run (the manager guards it with its lock). `train_in_thread`
calls engine.train.job.run_job directly; `train_in_process` starts `python -m engine.runs.worker`, writes the job
to its stdin, asks it to stop over the same pipe, and turns the JSON lines it prints into the same events. Either
way the manager learns of a run through three callbacks (`Events`), so it does not care which one trained it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runs import worker
from engine.runs.snapshot import saved_step
from engine.train.config import TrainConfig
from engine.train.job import run_job
from engine.train.status import RunStatus
from engine.transform.tokenization import Tokenizer

log = logging.getLogger(__name__)

Outcome = tuple[str, str, dict[str, Any] | None]  # status, message for the learner, summary


@dataclass
class RunRecord:
    """The manager's mutable record of one run (guarded by the manager's lock)."""

    run_id: str
    label: str
    config: TrainConfig
    text: str | None
    tokenizer: Tokenizer | None
    run_dir: Path
    resume_from: Path | None
    created_at: float
    finetune_from: Path | None = None  # a fine-tune: the run folder whose model it starts from
    original_text: str | None = None  # ... and the corpus that model learned, evaluated beside the new one
    finetune: dict[str, Any] | None = None  # what the training process reported about the fine-tune
    status: RunStatus = RunStatus.QUEUED
    message: str = ""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: list[tuple[int, str]] = field(default_factory=list)
    device_sentence: str = ""
    params: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    eta_s: float | None = None
    summary: dict[str, Any] | None = None
    resumable: bool = False
    checkpoint_step: int | None = None
    slot: int | None = None  # which of the manager's slots it trains in (one per GPU)
    gpu: str | None = None  # the device that slot gave it ("cuda:1"), with several GPUs
    stop_requested_at: float | None = None  # time.monotonic() of the polite request, for the escalation
    terminated_at: float | None = None  # ... and of the SIGTERM
    escalated: str | None = None  # "terminate" or "kill": how the process was ended, if it ignored the request
    stop_event: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None  # "user" or "timeout"
    last_heartbeat: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    process: subprocess.Popen | None = None  # the training process, when runs have their own


@dataclass(frozen=True)
class Events:
    """What the manager hears from a run: it started (its model size, device, config), a metrics record, and
    (in process mode) the process it trains in."""

    on_started: Callable[[dict[str, Any]], None]
    on_record: Callable[[dict[str, Any]], None]
    on_process: Callable[[subprocess.Popen], None]


def train_in_thread(run: RunRecord, heartbeat_timeout: float, events: Events) -> Outcome:
    """Train in this thread (the manager's `workers="thread"`: no second or two spent importing torch again)."""
    return run_job(run.config, run.text or "", run.tokenizer, run.resume_from, run.run_dir, run.stop_event,
                   lambda: run.stop_reason, heartbeat_timeout, on_started=events.on_started,
                   on_record=events.on_record, finetune_from=run.finetune_from, original_text=run.original_text)


def train_in_process(run: RunRecord, spawn: Callable[[], subprocess.Popen], heartbeat_timeout: float,
                     events: Events, terminate_after: float) -> Outcome:
    """Start a worker process, hand it the job, and turn what it reports into events."""
    proc = spawn()
    job = worker.make_job(run.config, run.text, run.tokenizer, run.resume_from, run.run_dir, heartbeat_timeout,
                          finetune_from=run.finetune_from, original_text=run.original_text)
    assert proc.stdin is not None and proc.stdout is not None
    result = None
    events.on_process(proc)
    try:
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.flush()
        if run.stop_event.is_set():  # Stop was pressed while the process was starting
            send_stop(proc, run.stop_reason or "user")
        for line in proc.stdout:
            try:
                message = json.loads(line)
                event = message.pop("event")
            except (ValueError, KeyError, AttributeError):  # not ours: a library printed to stdout
                log.warning("run %s: ignoring a line from the training process: %r", run.run_id, line[:200])
                continue
            if event == "record":
                events.on_record(message["record"])
            elif event == "started":
                events.on_started(message)
            elif event == "done":
                result = message["status"], message["message"], message["summary"]
    except BrokenPipeError:  # the process died before it read its job; its exit code says more below
        pass
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        code = proc.wait()
    if result is None and run.escalated is not None:
        return RunStatus.STOPPED, ended_message(run.run_dir, terminate_after), None
    if result is None:
        return RunStatus.FAILED, (f"The training process ended unexpectedly (exit code {code}) before it could "
                                  "report how the run went. The course server's log has the details."), None
    return result


def ended_message(run_dir: Path, waited: float) -> str:
    """What a learner reads about a run whose process ignored the stop request and was ended: what was saved."""
    step = saved_step(run_dir)
    saved = (f"Its checkpoint from step {step:,} is saved: you can resume from there." if step is not None
             else "It had not saved a checkpoint yet, so nothing of it was kept.")
    return f"The training process did not stop within {waited:g} seconds of being asked, so it was ended. {saved}"


def send_stop(proc: subprocess.Popen, reason: str) -> None:
    """Ask a training process to stop (it finishes its step, saves and reports)."""
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"stop": reason}) + "\n")
        proc.stdin.flush()
    except (OSError, ValueError):  # it has already ended, or its pipe is closed
        pass


def thin(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Halve the plain records of the older part, keeping every evaluation, sample and the newest records."""
    keep_tail = len(metrics) // 4
    head, tail = metrics[:-keep_tail], metrics[-keep_tail:]
    thinned = [r for i, r in enumerate(head) if i % 2 == 0 or r.get("val_loss") is not None or "sample" in r]
    return thinned + tail


