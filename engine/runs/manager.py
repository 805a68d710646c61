"""The run manager: training runs in the background, a bounded number at a time, the rest in a queue.

Each run trains in a process of its own (`python -m engine.runs.worker`, followed by a thread here), so the web
server's work never competes with it for Python's interpreter lock; `RunManager(workers="thread")` trains in a
thread of this process instead. The UI keeps no training state: it submits a run, polls `snapshot(run_id)` (a copy
of plain data under a lock) and calls `heartbeat(run_id)`; a run nobody polls for `heartbeat_timeout` seconds (a
closed tab) stops itself and saves. At most `max_concurrent` runs train at once: one per GPU (slot i on
`engine.device.gpu_for_slot`), or one on a CPU. `stop` asks politely, then sends SIGTERM and SIGKILL to a process
that does not answer. docs/architecture.md ("A run's life") gives the protocol and what each failure leaves.

    run_id = get_manager().submit(PRESETS["lesson"], text, label="my first GPT")
    snap = get_manager().snapshot(run_id)        # status, queue position, metrics, samples, message ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch  # imported here, at the top, on purpose: importing torch lazily from two threads at once raced

import paths
from engine.device import gpu_for_slot
from engine.files import slug
from engine.runs import worker
from engine.runs.executors import Events, RunRecord, send_stop, thin, train_in_process, train_in_thread
from engine.runs.retention import prune_runs
from engine.runs.snapshot import RunSnapshot, saved_step, snapshot_from_folder
from engine.train.config import TrainConfig
from engine.train.status import RESUMABLE, RunStatus
from engine.transform.tokenization import CharTokenizer, Tokenizer

__all__ = ["RunManager", "RunSnapshot", "RunStatus", "get_manager", "snapshot_from_folder"]

log = logging.getLogger(__name__)

WORKERS = ("process", "thread")
TERMINATE_AFTER_S = 60.0  # a run asked to stop gets this long to finish its step and save before SIGTERM ...
KILL_AFTER_S = 15.0  # ... and this long after SIGTERM before SIGKILL (the slot is free once the process is gone)


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class RunManager:
    """Runs training in the background, a bounded number at once; see the module docstring."""

    def __init__(
        self,
        max_concurrent: int | None = None,
        heartbeat_timeout: float = 300.0,
        runs_root: Path | str | None = None,
        max_points: int = 2000,
        workers: str = "process",
        spawn: Callable[[], subprocess.Popen] = worker.spawn,
        n_gpus: int | None = None,
        terminate_after: float = TERMINATE_AFTER_S,
        kill_after: float = KILL_AFTER_S,
    ):
        if workers not in WORKERS:
            raise ValueError(f"workers must be one of {WORKERS}, not {workers!r}")
        self.workers = workers  # "process": each run trains in its own process (engine.runs.worker); "thread": in ours
        self.spawn = spawn  # starts a training process (tests pass one that starts a process that hangs)
        self.n_gpus = _cuda_count() if n_gpus is None else n_gpus
        self.max_concurrent = max_concurrent or max(1, self.n_gpus)  # one per GPU, or one on a CPU
        self.terminate_after = terminate_after  # seconds a stop request may go unanswered before SIGTERM ...
        self.kill_after = kill_after  # ... and seconds after SIGTERM before SIGKILL
        self.heartbeat_timeout = heartbeat_timeout  # seconds without a heartbeat before a run stops itself
        self.runs_root = Path(runs_root) if runs_root is not None else paths.runs_dir()
        self.max_points = max_points
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._queue: deque[str] = deque()
        self._running: set[str] = set()
        self._slots: dict[int, str] = {}  # slot -> id of the run training in it
        self.peak_running = 0  # the most runs ever training at once (tests check it never exceeds the limit)
        self._watchdog: threading.Thread | None = None

    # ---- the UI's API ---------------------------------------------------------------------------------

    def submit(
        self,
        config: TrainConfig,
        text: str,
        tokenizer: Tokenizer | None = None,
        run_dir: Path | None = None,
        label: str = "",
        resume_from: Path | str | None = None,
        protected: Iterable[Path | str] = (),
        finetune_from: Path | str | None = None,
        original_text: str | None = None,
    ) -> str:
        """Queue a run and return its id. `tokenizer` None -> a CharTokenizer of `text`.

        `resume_from`: a run folder whose checkpoint this run continues (its tokenizer and model shape win).
        `finetune_from`: a run folder whose model this new run trains further on `text` (its tokenizer and model
        shape win; a fresh optimizer, from step 0: engine.train.finetune), with `original_text`, the corpus that model
        learned, evaluated beside `text` at every evaluation.
        `protected`: run folders someone still points at (a learner's runs); the others may be pruned now that a
        new folder is on its way (engine.runs.retention.prune_runs, docs/retention.md).
        """
        if config.max_steps is None and config.time_budget is None:
            raise ValueError("A run needs an end: set max_steps or time_budget.")
        if resume_from is not None and finetune_from is not None:
            raise ValueError("A run either resumes a checkpoint or fine-tunes one, not both.")
        if tokenizer is None and resume_from is None and finetune_from is None:
            tokenizer = CharTokenizer.from_text(text)
        run_id = uuid.uuid4().hex[:12]
        if run_dir is None:
            run_dir = self.runs_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(label, fallback='run')}-{run_id[:6]}"
        run = RunRecord(run_id=run_id, label=label, config=config, text=text, tokenizer=tokenizer, run_dir=Path(run_dir),
                   resume_from=Path(resume_from) if resume_from is not None else None, created_at=time.time(),
                   finetune_from=Path(finetune_from) if finetune_from is not None else None,
                   original_text=original_text)
        with self._lock:
            self._runs[run_id] = run
            self._queue.append(run_id)
            self._start_watchdog()
            self._dispatch()
        self.prune(protected)
        return run_id

    def prune(self, protected: Iterable[Path | str] = ()) -> list[Path]:
        """Delete old run folders under runs_root, never `protected` ones nor any run this manager knows unless it
        has ended (see engine.runs.retention.prune_runs). Returns the deleted folders."""
        with self._lock:
            mine = [run.run_dir for run in self._runs.values()
                    if run.status.active or run.finished_at is None or time.time() - run.finished_at < 60]
        mine += [Path(p) for p in protected]
        try:
            return prune_runs(self.runs_root, protected=mine)
        except OSError as err:  # a full or read-only disk must not stop a run from starting
            log.warning("could not prune old runs under %s: %s", self.runs_root, err)
            return []

    def snapshot(self, run_id: str) -> RunSnapshot:
        """A copy of the run's current state. Cheap (list copies under a lock), so poll it freely."""
        with self._lock:
            run = self._get(run_id)
            return self._snapshot(run)

    def stop(self, run_id: str) -> None:
        """Ask a run to stop. Returns at once; the run stops after its current step and saves a checkpoint.
        A queued run is simply taken out of the queue. A training process that ignores the request is ended
        (SIGTERM, then SIGKILL: see the module docstring)."""
        with self._lock:
            run = self._get(run_id)
            self._stop(run, "user")

    def heartbeat(self, run_id: str) -> None:
        """Someone is still watching this run (the page calls this on every poll)."""
        with self._lock:
            self._get(run_id).last_heartbeat = time.monotonic()

    def list_runs(self) -> list[RunSnapshot]:
        """Every run this process knows about, oldest first."""
        with self._lock:
            return [self._snapshot(run) for run in self._runs.values()]

    def wait(self, run_id: str, timeout: float | None = None) -> RunSnapshot:
        """Block until the run has ended (for scripts and tests; the UI polls instead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            snap = self.snapshot(run_id)
            if snap.status.ended:
                return snap
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {snap.status} after {timeout} s")
            time.sleep(0.02)

    # ---- inside the manager (callers hold self._lock) ------------------------------------------------

    def _get(self, run_id: str) -> RunRecord:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"no run with id {run_id!r} in this server process") from None

    def _snapshot(self, run: RunRecord) -> RunSnapshot:
        position = None
        if run.status == RunStatus.QUEUED:
            position = self._queue.index(run.run_id) + 1
        return RunSnapshot(
            run_id=run.run_id, label=run.label, status=run.status, queue_position=position,
            metrics=list(run.metrics), samples=list(run.samples), device_sentence=run.device_sentence,
            params=run.params, message=run.message, run_dir=str(run.run_dir), config=run.config.to_dict(),
            started_at=run.started_at, eta_s=run.eta_s, created_at=run.created_at,
            finished_at=run.finished_at, summary=dict(run.summary) if run.summary else None,
            resumable=run.resumable, checkpoint_step=run.checkpoint_step, gpu=run.gpu, finetune=run.finetune,
        )

    def slots(self) -> dict[int, str]:
        """Which run trains in which slot (slot i trains on GPU i when there are several GPUs)."""
        with self._lock:
            return dict(self._slots)

    def _stop(self, run: RunRecord, reason: str) -> None:
        if run.status == RunStatus.QUEUED:
            self._queue.remove(run.run_id)
            run.status, run.finished_at = RunStatus.STOPPED, time.time()
            run.text = run.original_text = None
            run.message = ("Nobody was watching this run, so it was taken out of the queue before it started."
                           if reason == "timeout" else "Stopped before it started: it was still waiting in the queue.")
        elif run.status == RunStatus.RUNNING and not run.stop_event.is_set():
            run.stop_reason = reason
            run.stop_event.set()
            run.stop_requested_at = time.monotonic()
            if run.process is not None:
                send_stop(run.process, reason)

    def _escalate(self, run: RunRecord, now: float) -> None:
        """A training process that has not ended `terminate_after` s after a stop request gets SIGTERM, and
        SIGKILL `kill_after` s later. (A run in a thread cannot be ended from outside: it keeps its slot.)"""
        proc = run.process
        if run.stop_requested_at is None or proc is None or proc.poll() is not None:
            return
        if run.terminated_at is None and now - run.stop_requested_at > self.terminate_after:
            log.warning("run %s did not stop within %g s of being asked: sending SIGTERM", run.run_id,
                        self.terminate_after)
            run.terminated_at, run.escalated = now, "terminate"
            with contextlib.suppress(OSError):
                proc.terminate()
        elif run.terminated_at is not None and run.escalated != "kill" and now - run.terminated_at > self.kill_after:
            log.warning("run %s ignored SIGTERM for %g s: sending SIGKILL", run.run_id, self.kill_after)
            run.escalated = "kill"
            with contextlib.suppress(OSError):
                proc.kill()

    def _dispatch(self) -> None:
        """Start queued runs while there is room."""
        while self._queue and len(self._running) < self.max_concurrent:
            run = self._runs[self._queue.popleft()]
            run.status, run.started_at = RunStatus.RUNNING, time.time()
            run.last_heartbeat = time.monotonic()  # the wait in the queue does not count against it
            run.slot = min(set(range(self.max_concurrent)) - set(self._slots))
            self._slots[run.slot] = run.run_id
            # One run per GPU: give it its own. ("cuda:N" too: a resumed run brings the GPU it had last time.)
            if self.n_gpus > 1 and (run.config.device == "auto" or run.config.device.startswith("cuda")):
                run.gpu = gpu_for_slot(run.slot, self.n_gpus)
                run.config = dataclasses.replace(run.config, device=run.gpu)
            self._running.add(run.run_id)
            self.peak_running = max(self.peak_running, len(self._running))
            run.thread = threading.Thread(target=self._work, args=(run,), name=f"train-{run.run_id}", daemon=True)
            run.thread.start()

    def _start_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, name="run-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        """Stop runs nobody has polled for heartbeat_timeout seconds; end processes that ignore a stop request."""
        while True:
            time.sleep(max(0.02, min(1.0, self.heartbeat_timeout / 5, self.terminate_after / 5, self.kill_after / 5)))
            now = time.monotonic()
            with self._lock:
                for run in list(self._runs.values()):
                    if run.status.active and now - run.last_heartbeat > self.heartbeat_timeout:
                        self._stop(run, "timeout")
                    if run.status == RunStatus.RUNNING:
                        self._escalate(run, now)

    # ---- the thread that trains a run, or follows its training process ---------------------------------

    def _on_started(self, run: RunRecord, info: dict[str, Any]) -> None:
        with self._lock:
            run.text = run.original_text = None  # the worker has its own copy now
            run.params = info["params"]
            run.finetune = info.get("finetune")
            run.device_sentence = info["device_sentence"]
            run.config = TrainConfig.from_dict(info["config"])  # on resume, the checkpoint's model shape
            if run.gpu is not None:
                run.config.device = run.gpu

    def _on_record(self, run: RunRecord, record: dict[str, Any]) -> None:
        with self._lock:
            run.metrics.append(record)
            run.eta_s = record.get("eta_s")
            if "sample" in record:
                run.samples.append((record["step"], record["sample"]))
            if len(run.metrics) > self.max_points:
                run.metrics = thin(run.metrics)

    def _on_process(self, run: RunRecord, proc: subprocess.Popen) -> None:
        with self._lock:  # known before the job is written: a process too stuck to read it can still be ended
            run.process = proc

    def _work(self, run: RunRecord) -> None:
        status, message, summary = RunStatus.FAILED, "The run could not start.", None
        events = Events(on_started=lambda info: self._on_started(run, info),
                        on_record=lambda record: self._on_record(run, record),
                        on_process=lambda proc: self._on_process(run, proc))
        try:
            if self.workers == "process":
                status, message, summary = train_in_process(run, self.spawn, self.heartbeat_timeout, events,
                                                            self.terminate_after)
            else:
                status, message, summary = train_in_thread(run, self.heartbeat_timeout, events)
        except Exception as err:  # noqa: BLE001 - a run's failure must not take the server down
            log.error("run %s failed:\n%s", run.run_id, traceback.format_exc())
            status, message = RunStatus.FAILED, f"The run could not continue: {err}"
        finally:
            step = saved_step(run.run_dir)  # read before taking the lock: it touches the disk
            with self._lock:
                run.status = RunStatus.parse(status, RunStatus.FAILED)
                run.message, run.summary = message, summary
                run.finished_at = time.time()
                run.eta_s = 0.0 if run.status == RunStatus.FINISHED else None
                run.checkpoint_step = step
                run.resumable = run.status in RESUMABLE and step is not None
                run.text = run.original_text = None
                run.process = None
                self._running.discard(run.run_id)
                if self._slots.get(run.slot) == run.run_id:
                    del self._slots[run.slot]
                self._dispatch()


# ---- the module-level manager the UI uses ----------------------------------------------------------------

_manager: RunManager | None = None
_manager_lock = threading.Lock()


def get_manager() -> RunManager:
    """The one RunManager of this server process (created on first use)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = RunManager()
        return _manager
