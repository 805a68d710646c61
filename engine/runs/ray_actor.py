"""The Ray side of a run: a detached actor that trains one job and keeps its protocol messages for whoever asks.

On a class's cluster the course server is not the run's parent (engine.runs.ray_backend launches this actor), so
the run must not depend on anyone polling it: it trains `run_job` in a thread, exactly as a worker process does,
and appends the worker protocol's messages (started, record, saved, save_failed, done) to a list that any server
reads by cursor. It never stops for want of a heartbeat; it exits once its messages were released, or a grace
period after its end (its folder then tells the story). A job asking for more than one GPU trains data-parallel on
Ray Train's TorchTrainer, which sets up the process group; the engine's DDP path runs inside each rank unchanged,
and rank 0 relays its messages to this actor in small batches and hears stop requests in reply.

Ray is imported only inside functions that run on the cluster, so importing this module never needs it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.train.config import TrainConfig
from engine.train.distributed import DistInfo, setup_distributed
from engine.train.job import CHECKPOINT_EVERY_S, run_job
from engine.train.status import RunStatus
from engine.transform.tokenization import tokenizer_from_dict

MESSAGES_PER_CALL = 5000  # a reader asks again for the rest: one reply stays a few MB at most
RELAY_EVERY_S = 0.25  # how often rank 0 of a data-parallel run hands its messages over (and hears of a stop)


def train_job(job: dict[str, Any], stop_event: threading.Event, stop_reason: Callable[[], str | None],
              send: Callable[[dict[str, Any]], None], threads: int, dist_info: DistInfo | None = None) -> dict[str, Any]:
    """Train a worker job (engine.runs.worker.make_job) with run_job, sending the protocol's messages to `send`;
    return the "done" message (not sent). A config without a thread count gets `threads`."""
    config = TrainConfig.from_dict(job["config"])
    if config.threads is None:
        config = config.with_changes(threads=threads)
    torch.set_num_threads(config.threads)
    tokenizer = tokenizer_from_dict(job["tokenizer"]) if job.get("tokenizer") else None
    status, message, summary = run_job(
        config, job["text"], tokenizer, Path(job["resume_from"]) if job.get("resume_from") else None,
        Path(job["run_dir"]), stop_event, stop_reason, float(job.get("heartbeat_timeout", 300.0)),
        on_started=lambda info: send({"event": "started", **info}),
        on_record=lambda record: send({"event": "record", "record": record}),
        dist_info=dist_info, on_event=send,
        checkpoint_every_s=float(job.get("checkpoint_every_s", CHECKPOINT_EVERY_S)),
        finetune_from=Path(job["finetune_from"]) if job.get("finetune_from") else None,
        original_text=job.get("original_text"),
    )
    return {"event": "done", "status": status, "message": message, "summary": summary}


class RunActor:
    """One run on the cluster (made a Ray actor by engine.runs.ray_backend). `ranks` > 1 trains data-parallel,
    each rank asking for `rank_resources` ({"CPU": n, "GPU": m}); otherwise it trains here, in a thread."""

    def __init__(self, job: dict[str, Any], threads: int, grace_s: float, ranks: int = 1,
                 rank_resources: dict[str, float] | None = None) -> None:
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop, self._reason = threading.Event(), None
        self._done, self._released = threading.Event(), threading.Event()
        self._threads, self._grace_s = threads, grace_s
        target = self._train_ranks if ranks > 1 else self._train_here
        args = (job, ranks, rank_resources or {}) if ranks > 1 else (job,)
        threading.Thread(target=self._life, args=(target, args), daemon=True, name="run").start()

    # ---- what a course server calls ------------------------------------------------------------------------

    def messages(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """The messages from index `cursor` on (at most MESSAGES_PER_CALL) and the cursor after them."""
        with self._lock:
            batch = self._messages[cursor:cursor + MESSAGES_PER_CALL]
        return batch, cursor + len(batch)

    def stop(self, reason: str) -> None:
        """Finish the step, save, report "done"; the first reason wins (a learner's Stop stays a Stop)."""
        self._reason = self._reason or reason
        self._stop.set()

    def state(self) -> str:
        return "done" if self._done.is_set() else "running"

    def release(self) -> None:
        """Nobody needs the messages any more: exit now if the run has ended, else as soon as it does."""
        self._released.set()

    def push(self, batch: list[dict[str, Any]]) -> str | None:
        """Rank 0 of a data-parallel run hands over its messages; the reply is the stop reason, if any."""
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

    def _life(self, target: Callable[..., dict[str, Any]], args: tuple) -> None:
        try:
            done = target(*args)
        except Exception as err:  # noqa: BLE001 - the run must still report how it ended
            done = {"event": "done", "status": RunStatus.FAILED, "message": f"The run could not continue: {err}",
                    "summary": None}
        self._append(done)  # ignored when rank 0 already sent its own
        self._released.wait(self._grace_s)
        import ray

        # the run has ended and its folder holds everything: nothing is lost by ending the process outright
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    def _train_here(self, job: dict[str, Any]) -> dict[str, Any]:
        return train_job(job, self._stop, lambda: self._reason, self._append, self._threads)

    def _train_ranks(self, job: dict[str, Any], ranks: int, resources: dict[str, float]) -> dict[str, Any]:
        """TorchTrainer with `ranks` workers: gloo between CPU processes, NCCL between GPUs (one GPU per rank)."""
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        use_gpu = resources.get("GPU", 0) > 0
        storage = tempfile.mkdtemp(prefix="llm-course-ray-train-")  # Ray Train's own bookkeeping, not the run's
        try:
            trainer = TorchTrainer(
                _rank_main,
                train_loop_config={"job": job, "actor": ray.get_runtime_context().current_actor,
                                   "threads": self._threads},
                scaling_config=ScalingConfig(num_workers=ranks, use_gpu=use_gpu, resources_per_worker=resources),
                torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
                run_config=RunConfig(name="run", storage_path=storage),
            )
            trainer.fit()
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        return {"event": "done", "status": RunStatus.FAILED, "summary": None,
                "message": "The run's processes ended without reporting how the run ended."}


class _Relay:
    """Rank 0's line to the run's actor: messages are batched and pushed every RELAY_EVERY_S, and each push's
    reply may carry a stop request, which sets `stop_event` (the ranks agree on it at their next step)."""

    def __init__(self, actor: Any) -> None:
        self.actor, self.reason = actor, None
        self.stop_event, self._closed = threading.Event(), threading.Event()
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
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


def _rank_main(loop_config: dict[str, Any]) -> None:
    """One rank under TorchTrainer: Ray Train has set RANK, WORLD_SIZE, LOCAL_RANK and joined the process group,
    so setup_distributed only reads them; rank 0 relays the protocol to the run's actor."""
    job, threads = loop_config["job"], loop_config["threads"]
    dist_info = setup_distributed(TrainConfig.from_dict(job["config"]).device)
    if not dist_info.is_main:
        train_job(job, threading.Event(), lambda: None, lambda message: None, threads, dist_info)
        return
    relay = _Relay(loop_config["actor"])
    done = None
    try:
        done = train_job(job, relay.stop_event, lambda: relay.reason, relay.send, threads, dist_info)
    finally:
        with contextlib.suppress(Exception):
            relay.close(done or {"event": "done", "status": RunStatus.FAILED, "summary": None,
                                 "message": "The run's first process failed."})
