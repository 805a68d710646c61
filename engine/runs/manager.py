"""The run manager: training runs in the background, a bounded number at a time, the rest in a fair queue.

Each run trains in a process of its own (`python -m engine.runs.worker`, followed by a thread here), so the web
server's work never competes with it for Python's interpreter lock; `workers="thread"` trains in a thread of this
process instead, and with a Ray backend (engine.runs.ray_backend) each run is an actor on the class's cluster. The
UI keeps no training state: it submits a run, polls `snapshot(run_id)` and calls `heartbeat(run_id)`; a run nobody
polls for `heartbeat_timeout` seconds (a closed tab) stops itself and saves, and every run is stopped once past its
deadline (its budget plus a margin). `stop` asks politely, then SIGTERM and SIGKILL end a process that does not
answer. Who starts next is engine.runs.fair_queue's rule; waiting runs are kept in the progress database
(engine.runs.queue_store), so a restart brings them back. docs/architecture.md ("A run's life") has the protocol.

    run_id = get_manager().submit(PRESETS["lesson"], text, label="my first GPT", owner="7")
    snap = get_manager().snapshot(run_id)        # status, place in line, metrics, samples, message ...
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch  # imported here, at the top, on purpose: importing torch lazily from two threads at once raced

import paths
from engine.device import gpu_for_slot, physical_cores
from engine.files import slug
from engine.runs import executors, fair_queue, pool_settings, reattach, run_end, run_owner, watchdog, worker
from engine.runs.executors import Events, RunRecord, job_of, train_in_process, train_in_thread, train_on_ray
from engine.runs.fair_queue import QueueFull
from engine.runs.pool_settings import PoolSettings
from engine.runs.queue_store import QueueStore
from engine.runs.ranks import check_processes, record_processes, threads_per_rank
from engine.runs.ray_backend import backend_from_environment
from engine.runs.retention import owner_identity, prune_runs
from engine.runs.snapshot import RunSnapshot, saved_step, snapshot_from_folder
from engine.train.config import TrainConfig
from engine.train.status import RunStatus
from engine.transform.tokenization import CharTokenizer, Tokenizer

__all__ = ["QueueFull", "RunManager", "RunSnapshot", "RunStatus", "get_manager", "snapshot_from_folder"]

log = logging.getLogger(__name__)

WORKERS = ("process", "thread", "ray")
TERMINATE_AFTER_S = 60.0  # a run asked to stop gets this long to finish its step and save before SIGTERM ...
KILL_AFTER_S = 15.0  # ... and this long after SIGTERM before SIGKILL (the slot is free once the process is gone)
KEEP_ENDED_S = 600.0  # an ended run stays in memory this long (its folder tells the rest) ...
KEEP_ENDED_MAX = 200  # ... and at most this many of them


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
        settings: PoolSettings | None = None,
        queue_store: QueueStore | None = None,
        ray: Any = None,
        keep_ended_s: float = KEEP_ENDED_S,
    ):
        if workers not in WORKERS or (workers == "ray") != (ray is not None):
            raise ValueError(f"workers must be one of {WORKERS} (\"ray\" with a Ray backend), not {workers!r}")
        self.workers = workers  # "process": each run in its own process (engine.runs.worker); "thread": in ours
        self.spawn = spawn  # starts a training process (tests pass one that starts a process that hangs)
        self.ray = ray  # an engine.runs.ray_backend.RayBackend when runs go to a Ray cluster
        self.n_gpus = _cuda_count() if n_gpus is None else n_gpus
        settings = settings or PoolSettings(slots=max(1, self.n_gpus), threads_per_run=physical_cores())
        self.settings = dataclasses.replace(settings, slots=max_concurrent) if max_concurrent else settings
        self.max_concurrent = self.settings.slots
        self.terminate_after = terminate_after  # seconds a stop request may go unanswered before SIGTERM ...
        self.kill_after = kill_after  # ... and seconds after SIGTERM before SIGKILL
        self.heartbeat_timeout = heartbeat_timeout  # seconds without a heartbeat before a run stops itself
        self.runs_root = Path(runs_root) if runs_root is not None else paths.runs_dir()
        self.max_points = max_points
        self.keep_ended_s = keep_ended_s
        self.keep_ended_max = KEEP_ENDED_MAX
        self.store = queue_store
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._queue: list[str] = []  # waiting runs, in the order they were asked for
        self._running: set[str] = set()
        self._slots: dict[int, str] = {}  # slot -> id of the run training in it
        self._last_start: dict[str, float] = {}  # owner -> when their latest run started (the round robin)
        self._not_on_ray: dict[str, float] = {}  # run id -> when Ray last said it has no such run
        self.peak_running = 0  # the most runs ever training at once (tests check it never exceeds the limit)
        self._watchdog: threading.Thread | None = None
        if self.store is not None:
            reattach.restore(self)

    # ---- the UI's API ---------------------------------------------------------------------------------

    def submit(self, config: TrainConfig, text: str, tokenizer: Tokenizer | None = None, run_dir: Path | None = None,
               label: str = "", resume_from: Path | str | None = None, protected: Iterable[Path | str] = (),
               finetune_from: Path | str | None = None, original_text: str | None = None, owner: str = "",
               batch: str | None = None, gpus: int = 1, processes: int = 1) -> str:
        """Queue a run and return its id. `tokenizer` None -> a CharTokenizer of `text`.

        `resume_from`: a run folder whose checkpoint this run continues (its tokenizer and model shape win).
        `finetune_from`: a run folder whose model this new run trains further on `text` (engine.train.finetune), with
        `original_text`, the corpus that model learned, evaluated beside it. `protected`: run folders someone still
        points at; the others may be pruned now (engine.runs.retention). `owner`: the learner asking (their caps and
        turn in the round robin; "" for a script); `batch`: runs asked for together share it and count as one
        waiting request. `gpus` > 1: data-parallel on that many GPUs, which needs Ray (Ray Train sets it up).
        `processes` > 1: data-parallel on this machine's CPU, that many processes under torchrun, in one slot
        (engine.runs.ranks; workers="process" only: ValueError otherwise).
        Raises QueueFull, with a message for the learner, when they hold as many as they may, and PermissionError
        when `resume_from` or `finetune_from` is another owner's run (engine.runs.run_owner).
        """
        if config.max_steps is None and config.time_budget is None:
            raise ValueError("A run needs an end: set max_steps or time_budget.")
        if resume_from is not None and finetune_from is not None:
            raise ValueError("A run either resumes a checkpoint or fine-tunes one, not both.")
        if gpus > 1 and self.ray is None:
            raise ValueError("A run on several GPUs trains on a Ray cluster (LLM_COURSE_RAY_ADDRESS); this server "
                             "trains one GPU per run.")
        config = check_processes(processes, self.workers, config)
        run_owner.check_sources(owner, resume_from=resume_from, finetune_from=finetune_from)
        if tokenizer is None and resume_from is None and finetune_from is None:
            tokenizer = CharTokenizer.from_text(text)
        run_id = uuid.uuid4().hex[:12]
        if run_dir is None:
            run_dir = self.runs_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(label, fallback='run')}-{run_id[:6]}"
        run = RunRecord(run_id=run_id, label=label, config=config, text=text, tokenizer=tokenizer, run_dir=Path(run_dir),
                        resume_from=Path(resume_from) if resume_from is not None else None, created_at=time.time(),
                        finetune_from=Path(finetune_from) if finetune_from is not None else None,
                        original_text=original_text, owner=owner, batch=batch, gpus=gpus, processes=processes)
        with self._lock:
            fair_queue.check_admission(owner, batch, self._waiting(), self._running_now(),
                                       self.settings.running_per_learner, self.settings.waiting_per_learner)
            self._runs[run_id] = run
        run_owner.record_owner(run.run_dir, owner)
        if self.store is not None:  # kept before it can start (its start removes the row): a restart must not lose it
            self._store_call(self.store.add, run_id, owner, batch, label, run.run_dir,
                             job_of(run, self.heartbeat_timeout))
        with self._lock:
            stopped_meanwhile = run.status != RunStatus.QUEUED  # Stop came while its row was being written
            if not stopped_meanwhile:
                self._queue.append(run_id)
                self._start_watchdog()
                self._dispatch()
        if stopped_meanwhile and self.store is not None:
            self._store_call(self.store.ended, run_id)
        self.prune(protected)
        return run_id

    def prune(self, protected: Iterable[Path | str] = ()) -> list[Path]:
        """Delete old run folders under runs_root, never `protected` ones, any run this manager knows unless it
        ended a minute ago, nor the folder a waiting or training resume or fine-tune reads (engine.runs.retention)."""
        with self._lock:
            known = [run for run in self._runs.values()
                     if run.status.active or run.finished_at is None or time.time() - run.finished_at < 60]
            mine = [run.run_dir for run in known]
            mine += [p for run in known if run.status.active for p in (run.resume_from, run.finetune_from) if p]
        mine += [Path(p) for p in protected]
        owner = owner_identity(self.store.owner) if self.store is not None else None
        try:
            return prune_runs(self.runs_root, protected=mine, owner=owner)
        except OSError as err:  # a full or read-only disk must not stop a run from starting
            log.warning("could not prune old runs under %s: %s", self.runs_root, err)
            return []

    def snapshot(self, run_id: str, history: bool = True, run_dir: Path | str | None = None) -> RunSnapshot:
        """A copy of the run's current state; `history` False: only the newest record and sample (a listing).
        A run this server does not know raises KeyError, unless it trains on Ray (another server started it, or
        this one before a restart): then it is followed from now on (`run_dir` says where it writes)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                return self._snapshot(run, history)
        if self.ray is not None and reattach.attach(self, run_id, run_dir):
            return self.snapshot(run_id, history)
        raise KeyError(f"no run with id {run_id!r} in this server process")

    def stop(self, run_id: str, owner: str | None = None) -> None:
        """Ask a run to stop. Returns at once; the run stops after its current step and saves a checkpoint.
        A queued run is simply taken out of the queue. A training process that ignores the request is ended.
        `owner` given (a page acting for a learner): PermissionError unless the run is theirs."""
        with self._lock:
            run = self._get(run_id)
            if owner is not None and run.owner != owner:
                raise PermissionError(f"run {run_id} is not {owner}'s to stop")
            dequeued = self._stop(run, "user")
        if dequeued and self.store is not None:
            self._store_call(self.store.ended, run_id)

    def heartbeat(self, run_id: str) -> None:
        """Someone is still watching this run (the page calls this on every poll)."""
        with self._lock:
            self._get(run_id).last_heartbeat = time.monotonic()

    def list_runs(self, history: bool = False) -> list[RunSnapshot]:
        """Every run this process knows about, oldest first (without their histories unless asked)."""
        with self._lock:
            return [self._snapshot(run, history) for run in self._runs.values()]

    def wait(self, run_id: str, timeout: float | None = None) -> RunSnapshot:
        """Block until the run has ended (for scripts and tests; the UI polls instead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (snap := self.snapshot(run_id)).status.active:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {snap.status} after {timeout} s")
            time.sleep(0.02)
        return snap

    def slots(self) -> dict[int, str]:
        """Which run trains in which slot (slot i trains on GPU i % n when there are several GPUs)."""
        with self._lock:
            return dict(self._slots)

    # ---- inside the manager (callers hold self._lock) ------------------------------------------------

    def _get(self, run_id: str) -> RunRecord:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"no run with id {run_id!r} in this server process") from None

    def _waiting(self) -> list[fair_queue.Waiting]:
        return [fair_queue.Waiting(r.run_id, r.owner, fair_queue.expected_seconds(r.config.time_budget), r.batch)
                for r in (self._runs[i] for i in self._queue)]

    def _running_now(self) -> list[fair_queue.Running]:
        def remaining(run: RunRecord) -> float:  # the trainer's estimate, else the budget less the time it has run
            if run.eta_s is not None:
                return run.eta_s
            return fair_queue.expected_seconds(run.config.time_budget) - (time.time() - (run.started_at or time.time()))
        return [fair_queue.Running(r.run_id, r.owner, max(0.0, remaining(r))) for r in map(self._runs.get, self._running)]

    def _snapshot(self, run: RunRecord, history: bool = True) -> RunSnapshot:
        position = starts_in = None
        if run.status == RunStatus.QUEUED:
            plan = fair_queue.forecast(self._waiting(), self._running_now(), self.max_concurrent, self._last_start,
                                       self.settings.running_per_learner)
            position, starts_in = plan.get(run.run_id, (len(self._queue), None))
        metrics = list(run.metrics) if history else run.metrics[-1:]
        samples = list(run.samples) if history else run.samples[-1:]
        return RunSnapshot(
            run_id=run.run_id, label=run.label, status=run.status, queue_position=position, starts_in_s=starts_in,
            metrics=metrics, samples=samples, device_sentence=run.device_sentence,
            params=run.params, message=run.message, run_dir=str(run.run_dir), config=run.config.to_dict(),
            started_at=run.started_at, eta_s=run.eta_s, created_at=run.created_at,
            finished_at=run.finished_at, summary=dict(run.summary) if run.summary else None,
            resumable=run.resumable, checkpoint_step=run.checkpoint_step, gpu=run.gpu, finetune=run.finetune,
            save_warning=run.save_warning, processes=run.processes,
        )

    def _stop(self, run: RunRecord, reason: str) -> bool:
        """Ask `run` to stop; True if it was waiting and has left the queue (the caller forgets its stored row)."""
        if run.status == RunStatus.QUEUED:
            if run.run_id in self._queue:  # (not yet, while submit writes its stored row)
                self._queue.remove(run.run_id)
            run.status, run.finished_at = RunStatus.STOPPED, time.time()
            run.text = run.original_text = None
            run.message = ("Nobody was watching this run, so it was taken out of the queue before it started."
                           if reason == "timeout" else "Stopped before it started: it was still waiting in the queue.")
            return True
        if run.status == RunStatus.RUNNING and not run.stop_event.is_set():
            run.stop_reason = reason
            run.stop_requested_at = time.monotonic()
            run.stop_event.set()  # the thread that follows the run passes it on (executors)
        return False

    def _dispatch(self) -> None:
        """Start waiting runs while there is room, in the fair queue's order."""
        while self._queue and len(self._running) < self.max_concurrent:
            chosen = fair_queue.next_to_start(self._waiting(), self._running_now(), self.settings.running_per_learner,
                                              self._last_start)
            if chosen is None:
                return
            self._queue.remove(chosen.run_id)
            self._start(self._runs[chosen.run_id])

    def _start(self, run: RunRecord) -> None:
        run.status, run.started_at = RunStatus.RUNNING, time.time()
        now = time.monotonic()
        run.last_heartbeat = now  # the wait in the queue does not count against it
        run.deadline = now + self.settings.deadline_s(run.config.time_budget)
        if run.owner:
            self._last_start[run.owner] = now
        run.slot = min(set(range(self.max_concurrent)) - set(self._slots))
        self._slots[run.slot] = run.run_id
        if run.config.threads is None or run.processes > 1:  # several processes share the run's threads
            threads = threads_per_rank(run.config.threads or self.settings.threads_per_run, run.processes)
            run.config = dataclasses.replace(run.config, threads=threads)
        # Several GPUs: the slots take them in turn. ("cuda:N" too: a resumed run brings the GPU it had last time.)
        if self.n_gpus > 1 and self.ray is None and (run.config.device == "auto" or run.config.device.startswith("cuda")):
            run.gpu = gpu_for_slot(run.slot, self.n_gpus)
            run.config = dataclasses.replace(run.config, device=run.gpu)
        self._running.add(run.run_id)
        self.peak_running = max(self.peak_running, len(self._running))
        run.thread = threading.Thread(target=self._work, args=(run,), name=f"train-{run.run_id}", daemon=True)
        run.thread.start()

    def _start_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=watchdog.watch, args=(self,), name="run-watchdog", daemon=True)
            self._watchdog.start()

    def _store_call(self, method: Callable[..., Any], *args: Any) -> None:
        """Keep the queue's table up to date; a database that fails costs the restart its queue, not the run."""
        try:
            method(*args)
        except Exception as err:  # noqa: BLE001 - sqlite3 and OS errors alike
            log.warning("could not update the stored run queue (%s): %s", method.__name__, err)

    # ---- the thread that trains a run, or follows its training process or Ray actor ---------------------

    def _locked(self, apply: Callable[..., None], run: RunRecord) -> Callable[[Any], None]:
        """`apply(run, what)` under the manager's lock: how a run's thread passes on what it heard."""
        def call(what: Any) -> None:
            with self._lock:
                apply(run, what)
        return call

    def _work(self, run: RunRecord) -> None:
        status, message, summary = RunStatus.FAILED, "The run could not start.", None
        events = Events(on_started=self._locked(executors.apply_started, run),
                        on_record=self._locked(lambda r, rec: executors.apply_record(r, rec, self.max_points), run),
                        on_process=self._locked(executors.apply_process, run),
                        on_event=self._locked(executors.apply_event, run))
        try:
            if self.store is not None and not run.attached:
                self._store_call(self.store.started, run.run_id, self.workers)
            if self.workers == "ray":
                status, message, summary = train_on_ray(run, self.ray, self.heartbeat_timeout, events, self.terminate_after)
            elif self.workers == "process":
                status, message, summary = train_in_process(run, self.spawn, self.heartbeat_timeout, events,
                                                            self.terminate_after)
            else:
                status, message, summary = train_in_thread(run, self.heartbeat_timeout, events)
        except Exception as err:  # noqa: BLE001 - a run's failure must not take the server down
            log.error("run %s failed:\n%s", run.run_id, traceback.format_exc())
            status, message = RunStatus.FAILED, f"The run could not continue: {err}"
        finally:
            status = RunStatus.parse(status, RunStatus.FAILED)
            if run.stop_reason == "deadline" and status == RunStatus.STOPPED:
                message = run_end.deadline_message(saved_step(run.run_dir), self.settings.deadline_s(run.config.time_budget))
            step, resumable = run_end.settle_folder(run.run_dir, status, message)  # disk: before the lock
            if run.processes > 1:  # "2 processes", for a page that reads the folder
                record_processes(run.run_dir, run.processes)
                summary = {**summary, "processes": run.processes} if summary is not None else None
            if self.store is not None and self.workers == "ray":
                self._store_call(self.store.ended, run.run_id)
            with self._lock:
                run.status = status
                run.message, run.summary = message, summary
                run.finished_at = time.time()
                run.eta_s = 0.0 if run.status == RunStatus.FINISHED else None
                run.checkpoint_step, run.resumable = step, resumable
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
    """The one RunManager of this server process (created on first use): the pool's size from the machine and the
    environment (engine.runs.pool_settings), its queue in the progress database, and Ray when an address is set."""
    global _manager
    with _manager_lock:
        if _manager is None:
            n_gpus = _cuda_count()
            settings = pool_settings.from_environment(pool_settings.default_settings(physical_cores(), n_gpus))
            ray = backend_from_environment(settings.threads_per_run)
            if ray is not None and not os.environ.get(pool_settings.SLOTS_VAR):  # the cluster's size decides
                settings = dataclasses.replace(settings, slots=ray.capacity())
            _manager = RunManager(settings=settings, n_gpus=n_gpus, queue_store=QueueStore(paths.database_url()),
                                  workers="ray" if ray is not None else "process", ray=ray)
        return _manager
