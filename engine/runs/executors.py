"""How one run trains for the run manager: in a thread of this process, in a worker process, or on Ray.

`RunRecord` is the manager's mutable record of a run (the manager guards it with its lock). `train_in_thread`
calls engine.train.job.run_job directly; `train_in_process` starts `python -m engine.runs.worker`, writes the job
to its stdin (a run of several processes: torchrun and a job file, engine.runs.ranks), and turns the JSON lines it
prints into events; `train_on_ray` hands the job to a Ray actor (engine.runs.ray_backend) and polls it for the same
messages. Either way the manager learns of a run through the callbacks of `Events`, so it does not care where it
trained. A stop request is forwarded by the thread that follows the run, never by the manager under its lock: a
pipe or a cluster can be slow to answer.
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

from engine.runs import ranks, worker
from engine.runs.snapshot import saved_step, snapshot_from_folder
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
    owner: str = ""  # the learner who asked for it ("" for a script: never capped)
    batch: str | None = None  # runs asked for together count as one waiting request (engine.runs.fair_queue)
    deadline: float | None = None  # time.monotonic() after which the run is stopped, then ended
    save_warning: str | None = None  # the latest save that failed while training (the run goes on)
    kill_requested: bool = False  # a Ray run that ignored its stop request: the follower ends its actor
    attached: bool = False  # a Ray run another server process started: followed, not launched
    gpus: int = 1  # more than one: data-parallel on Ray Train, one GPU per rank
    processes: int = 1  # more than one: data-parallel on this machine's CPU, torchrun (engine.runs.ranks)
    ranks: dict[int, int] = field(default_factory=dict)  # ... and each rank's process id, as it reported it


@dataclass(frozen=True)
class Events:
    """What the manager hears from a run: it started (its model size, device, config), a metrics record, and
    (in process mode) the process it trains in."""

    on_started: Callable[[dict[str, Any]], None]
    on_record: Callable[[dict[str, Any]], None]
    on_process: Callable[[subprocess.Popen], None]
    on_event: Callable[[dict[str, Any]], None] = lambda message: None  # "saved", "save_failed"


# ---- what a run's thread heard, applied to its record (the caller holds the manager's lock) ----------------

def apply_started(run: RunRecord, info: dict[str, Any]) -> None:
    run.text = run.original_text = None  # the worker has its own copy now
    run.params = info["params"]
    run.finetune = info.get("finetune")
    run.device_sentence = info["device_sentence"]
    run.config = TrainConfig.from_dict(info["config"])  # on resume, the checkpoint's model shape
    if run.gpu is not None:
        run.config.device = run.gpu


def apply_record(run: RunRecord, record: dict[str, Any], max_points: int) -> None:
    run.metrics.append(record)
    run.eta_s = record.get("eta_s")
    if "sample" in record:
        run.samples.append((record["step"], record["sample"]))
    if len(run.metrics) > max_points:
        run.metrics = thin(run.metrics)


def apply_event(run: RunRecord, message: dict[str, Any]) -> None:
    """A save that failed while training shows on the page until a later one succeeds. A rank of a run of several
    processes says which process it is, so that ending the run ends it too (engine.runs.ranks.RankGroup)."""
    if message.get("event") == "rank":
        run.ranks[int(message["rank"])] = int(message["pid"])
    elif message.get("event") == "save_failed":
        run.save_warning = str(message.get("message") or "A checkpoint could not be saved.")
    elif message.get("event") == "saved":
        run.save_warning = None


def apply_process(run: RunRecord, proc: subprocess.Popen) -> None:
    run.process = proc  # known before the job is written: a process too stuck to read it can still be ended


def handle_message(run_id: str, message: Any, events: Events) -> Outcome | None:
    """Act on one protocol message (docs/architecture.md, "The worker's protocol"); the outcome once it is "done"."""
    try:
        event = message["event"]
    except (TypeError, KeyError):
        log.warning("run %s: ignoring a message that is not the protocol's: %r", run_id, str(message)[:200])
        return None
    if event == "record":
        events.on_record(message["record"])
    elif event == "started":
        events.on_started({k: v for k, v in message.items() if k != "event"})
    elif event == "done":
        return message["status"], message["message"], message["summary"]
    else:
        events.on_event(message)
    return None


def train_in_thread(run: RunRecord, heartbeat_timeout: float, events: Events) -> Outcome:
    """Train in this thread (the manager's `workers="thread"`: no second or two spent importing torch again)."""
    return run_job(run.config, run.text or "", run.tokenizer, run.resume_from, run.run_dir, run.stop_event,
                   lambda: run.stop_reason, heartbeat_timeout, on_started=events.on_started,
                   on_record=events.on_record, on_event=events.on_event, finetune_from=run.finetune_from,
                   original_text=run.original_text)


def job_of(run: RunRecord, heartbeat_timeout: float) -> dict[str, Any]:
    """The run as the worker's job line (and a Ray actor's job, and the queue's stored row)."""
    job = worker.make_job(run.config, run.text, run.tokenizer, run.resume_from, run.run_dir, heartbeat_timeout,
                          finetune_from=run.finetune_from, original_text=run.original_text)
    if run.gpus > 1:
        job["gpus"] = run.gpus
    if run.processes > 1:
        job["processes"] = run.processes
    return job


def _forward_stop(run: RunRecord, proc: subprocess.Popen) -> None:
    """Wait for the manager's stop request and pass it down the pipe (in this thread: a child that is still
    importing torch may not read its stdin for seconds, and nobody else should wait for it)."""
    while not run.stop_event.wait(0.25):
        if proc.poll() is not None:
            return
    send_stop(proc, run.stop_reason or "user")


def train_in_process(run: RunRecord, spawn: Callable[[], subprocess.Popen], heartbeat_timeout: float,
                     events: Events, terminate_after: float,
                     spawn_ranks: Callable[[int, Path, int], subprocess.Popen] | None = None) -> Outcome:
    """Start a worker process, hand it the job, and turn what it reports into events. A run of several processes
    starts torchrun instead (`spawn_ranks`, default engine.runs.ranks.spawn), with the job in a file, and leaves no
    rank behind."""
    job = job_of(run, heartbeat_timeout)
    job_file = ranks.write_job(run.run_dir, job) if run.processes > 1 else None
    if job_file is None:
        proc = spawn()
    else:
        proc = (spawn_ranks or ranks.spawn)(run.processes, job_file, run.config.threads or 1)
    if isinstance(proc, ranks.RankGroup):
        proc.ranks = run.ranks  # filled in as the ranks report (apply_event), read when the run is ended
    assert proc.stdin is not None and proc.stdout is not None
    result = None
    events.on_process(proc)
    try:
        if job_file is None:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
        threading.Thread(target=_forward_stop, args=(run, proc), name=f"stop-{run.run_id}", daemon=True).start()
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:  # not ours: a library printed to stdout
                log.warning("run %s: ignoring a line from the training process: %r", run.run_id, line[:200])
                continue
            result = handle_message(run.run_id, message, events) or result
    except BrokenPipeError:  # the process died before it read its job; its exit code says more below
        pass
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        code = proc.wait()
        if job_file is not None:
            ranks.end(proc, job_file)
    if result is None and run.escalated is not None:
        return RunStatus.STOPPED, ended_message(run.run_dir, terminate_after), None
    if result is None:
        return RunStatus.FAILED, (f"The training process ended unexpectedly (exit code {code}) before it could "
                                  "report how the run went. The course server's log has the details."), None
    return result


def train_on_ray(run: RunRecord, backend: Any, heartbeat_timeout: float, events: Events, terminate_after: float,
                 poll_s: float = 0.25) -> Outcome:
    """Hand the run to a Ray actor (or, `run.attached`, follow one already there) and relay its messages until it
    reports "done". `backend` is an engine.runs.ray_backend.RayBackend (imported by the manager only with Ray)."""
    from engine.runs.ray_backend import RunGone

    if not run.attached:
        backend.launch(run.run_id, job_of(run, heartbeat_timeout))
    cursor, stop_sent, killed = 0, False, False
    while True:
        if run.stop_event.is_set() and not stop_sent:
            backend.stop(run.run_id, run.stop_reason or "user")
            stop_sent = True
        if run.kill_requested and not killed:
            backend.kill(run.run_id)
            killed = True
        try:
            messages, cursor = backend.messages(run.run_id, cursor)
        except RunGone:
            if killed:
                return RunStatus.STOPPED, ended_message(run.run_dir, terminate_after), None
            told = told_by_folder(run.run_dir)  # another server following it read its end first, and released it
            if told is not None:
                return told
            return RunStatus.FAILED, ("The run's process on the Ray cluster ended before it reported how the run "
                                      "went. The cluster's logs have the details."), None
        for message in messages:
            result = handle_message(run.run_id, message, events)
            if result is not None:
                backend.release(run.run_id)
                return result
        time.sleep(poll_s)


def told_by_folder(run_dir: Path) -> Outcome | None:
    """How the run ended, as its folder's summary.json says (the training process writes it before it reports);
    None while the folder says it is still running, or says nothing."""
    snap = snapshot_from_folder(run_dir)
    if snap.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED, RunStatus.QUEUED):
        return None
    return snap.status, snap.message, snap.summary


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


