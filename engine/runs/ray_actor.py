"""The Ray side of a run: a detached actor that follows one job and keeps its protocol messages for whoever asks.

On a class's cluster the course server is not the run's parent (engine.runs.ray_backend launches this actor), so
the run must not depend on anyone polling it. The actor itself asks for no resources and only keeps the worker
protocol's messages (started, record, saved, save_failed, done), which any server reads by cursor; the training
runs in a Ray task that asks for the run's CPUs and GPU share, so they are freed the moment the run ends while its
messages stay readable. The task trains `run_job` exactly as a worker process does and hands its messages over in
small batches, hearing stop requests in reply. A job asking for more than one GPU trains data-parallel on Ray
Train's TorchTrainer, which sets up the process group; the engine's DDP path runs inside each rank unchanged. The
actor never stops a run for want of a heartbeat; it exits once released, or a grace period after the run ends.

Ray and the engine's trainer are imported inside the functions that run on the cluster, so the actor stays light.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from typing import Any

MESSAGES_PER_CALL = 5000  # a reader asks again for the rest: one reply stays a few MB at most
RELAY_EVERY_S = 0.25  # how often a training task hands its messages over (and hears of a stop)


def _failed(message: str) -> dict[str, Any]:
    return {"event": "done", "status": "failed", "message": message, "summary": None}


class RunActor:
    """One run on the cluster (made a detached Ray actor by engine.runs.ray_backend). It trains in a task asking
    for `resources` ({"num_cpus": n, "num_gpus": m}), or with `ranks` > 1 on TorchTrainer, each rank asking for
    `resources` ({"CPU": n, "GPU": m})."""

    def __init__(self, job: dict[str, Any], threads: int, grace_s: float, resources: dict[str, float],
                 ranks: int = 1) -> None:
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop, self._reason = threading.Event(), None
        self._started, self._done, self._released = threading.Event(), threading.Event(), threading.Event()
        self._threads, self._grace_s = threads, grace_s
        threading.Thread(target=self._life, args=(job, resources, ranks), daemon=True, name="run").start()

    # ---- what a course server calls ------------------------------------------------------------------------

    def messages(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """The messages from index `cursor` on (at most MESSAGES_PER_CALL) and the cursor after them."""
        with self._lock:
            batch = self._messages[cursor:cursor + MESSAGES_PER_CALL]
        return batch, cursor + len(batch)

    def stop(self, reason: str) -> None:
        """Finish the step, save, report "done"; the first reason wins (a learner's Stop stays a Stop). A run still
        waiting for its resources stops as soon as it starts, with its first checkpoint."""
        self._reason = self._reason or reason
        self._stop.set()

    def state(self) -> str:
        """"pending" until the training task has its resources, then "running", then "done"."""
        return "done" if self._done.is_set() else "running" if self._started.is_set() else "pending"

    def release(self) -> None:
        """Nobody needs the messages any more: exit now if the run has ended, else as soon as it does."""
        self._released.set()

    def push(self, batch: list[dict[str, Any]]) -> str | None:
        """The training task hands over its messages; the reply is the stop reason, if any."""
        self._started.set()
        for message in batch:
            self._append(message)
        return self._reason if self._stop.is_set() else None

    # ---- inside ----------------------------------------------------------------------------------------------

    def _append(self, message: dict[str, Any]) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._messages.append(message)
            if message.get("event") == "done":
                self._done.set()

    def _life(self, job: dict[str, Any], resources: dict[str, float], ranks: int) -> None:
        import ray

        me = ray.get_runtime_context().current_actor
        try:
            if ranks > 1:
                self._train_ranks(job, me, ranks, resources)
            else:  # no retries: a run that died must say so, not start again from scratch
                task = ray.remote(_train_task).options(max_retries=0, **resources)
                ray.get(task.remote(job, me, self._threads))
            self._append(_failed("The run's process ended without reporting how the run ended."))
        except Exception as err:  # noqa: BLE001 - the run must still report how it ended
            self._append(_failed(f"The run could not continue: {err}"))
        self._released.wait(self._grace_s)
        # the run has ended and its folder holds everything: nothing is lost by ending the process outright
        ray.kill(me, no_restart=True)

    def _train_ranks(self, job: dict[str, Any], me: Any, ranks: int, resources: dict[str, float]) -> None:
        """TorchTrainer with `ranks` workers: gloo between CPU processes, NCCL between GPUs (one GPU per rank)."""
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        from engine.train.distributed import COLLECTIVE_TIMEOUT_S

        use_gpu = resources.get("GPU", 0) > 0
        storage = tempfile.mkdtemp(prefix="llm-course-ray-train-")  # Ray Train's own bookkeeping, not the run's
        try:
            TorchTrainer(
                _rank_main,
                train_loop_config={"job": job, "actor": me, "threads": self._threads},
                scaling_config=ScalingConfig(num_workers=ranks, use_gpu=use_gpu, resources_per_worker=resources),
                torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=int(COLLECTIVE_TIMEOUT_S)),
                run_config=RunConfig(name="run", storage_path=storage),
            ).fit()
        finally:
            shutil.rmtree(storage, ignore_errors=True)


class _Relay:
    """A training process's line to the run's actor: messages are batched and pushed every RELAY_EVERY_S, and
    each push's reply may carry a stop request, which sets `stop_event`. An actor that is gone counts as one."""

    def __init__(self, actor: Any) -> None:
        self.actor, self.reason = actor, None
        self.stop_event, self._closed = threading.Event(), threading.Event()
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush()  # the first push says the run has its resources
        self._thread = threading.Thread(target=self._loop, daemon=True, name="relay")
        self._thread.start()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(message)

    def _flush(self) -> None:
        import ray

        with self._lock:
            batch, self._pending = self._pending, []
        try:
            reason = ray.get(self.actor.push.remote(batch))
        except Exception:  # noqa: BLE001 - the actor is gone: nobody will read this run, stop and save
            reason = "orphan"
        if reason:
            self.reason = self.reason or reason
            self.stop_event.set()

    def _loop(self) -> None:
        while not self._closed.wait(RELAY_EVERY_S):
            self._flush()

    def close(self, last: dict[str, Any]) -> None:
        """Send `last` (the "done" message) after everything before it, and stop relaying."""
        self._closed.set()
        self._thread.join()
        self.send(last)
        self._flush()


def _relayed(job: dict[str, Any], actor: Any, threads: int, dist_info: Any = None) -> None:
    """Train `job` here, relaying the protocol to `actor`; "done" is always the last message sent."""
    from engine.runs.worker import train_job
    from engine.train.job import RankFailed

    relay = _Relay(actor)
    done = None
    try:
        done = train_job(job, relay.stop_event, lambda: relay.reason, relay.send, threads, dist_info)
    except RankFailed as failed:  # data-parallel: this rank failed, or another did; the job ends on every rank
        done = {"event": "done", "status": failed.status, "message": failed.message, "summary": failed.summary}
        raise
    finally:
        with contextlib.suppress(Exception):
            relay.close(done or _failed("The run's training process failed."))


def _train_task(job: dict[str, Any], actor: Any, threads: int) -> None:
    """The Ray task that trains a one-process run with the run's resources."""
    _relayed(job, actor, threads)


def _rank_main(loop_config: dict[str, Any]) -> None:
    """One rank under TorchTrainer: Ray Train has set RANK, WORLD_SIZE, LOCAL_RANK and joined the process group,
    so setup_distributed only reads them; rank 0 relays the protocol to the run's actor."""
    from engine.runs.worker import train_job
    from engine.train.config import TrainConfig
    from engine.train.distributed import setup_distributed

    job, threads = loop_config["job"], loop_config["threads"]
    dist_info = setup_distributed(TrainConfig.from_dict(job["config"]).device)
    if dist_info.is_main:
        _relayed(job, loop_config["actor"], threads, dist_info)
    else:
        train_job(job, threading.Event(), lambda: None, lambda message: None, threads, dist_info)
