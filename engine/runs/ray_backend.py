"""Training runs on a Ray cluster, for a class: Ray schedules them by resources and they outlive the course server.

One server's pool trains a few runs at a time; a class needs more, and a server restart must not end them. Ray
already schedules by resources, fractional GPUs included (0.25: four lesson runs share a GPU, the fifth queues), so
each run becomes a detached, named actor (engine.runs.ray_actor) that trains the worker's job with the worker's
code and keeps its protocol messages. Any course server finds a run again by its id, in one namespace.

Every node imports the project from the same path (PYTHONPATH=paths.ROOT in the actor's runtime env) and writes
runs to the runs folder, which must be storage every node and the course server see (docs/deploy.md). Ray is
imported on first use, so a learner's `make run` never needs it. Usage statistics are off.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import paths

RAY_ADDRESS_VAR = "LLM_COURSE_RAY_ADDRESS"  # a Ray cluster's address: runs train there instead of in local workers
RAY_ADDRESS_OTHER_NAME = "COURSE_RAY_ADDRESS"  # the same, under the name the deployment notes also accept
CPUS_PER_RUN_VAR = "LLM_COURSE_RAY_CPUS_PER_RUN"  # CPUs each run asks Ray for (default 1)
GPUS_PER_RUN_VAR = "LLM_COURSE_RAY_GPUS_PER_RUN"  # GPUs each run asks Ray for: 0.25 lets four share one (default 0)
DONE_GRACE_S = 15 * 60.0  # an ended run's actor keeps its messages this long unless released sooner
CALL_TIMEOUT_S = 10.0  # the longest a call on a live actor may wait before it counts as "no news yet"
_PENDING_STATES = {"DEPENDENCIES_UNREADY", "PENDING_CREATION", "RESTARTING"}


class RunGone(Exception):
    """No actor of that name exists (any more) on the cluster: the run's folder is all there is."""


def ray_address() -> str | None:
    """The configured cluster: $LLM_COURSE_RAY_ADDRESS, else $COURSE_RAY_ADDRESS, else None (train locally)."""
    return os.environ.get(RAY_ADDRESS_VAR) or os.environ.get(RAY_ADDRESS_OTHER_NAME) or None


def backend_from_environment(threads_per_run: int) -> RayBackend | None:
    """A RayBackend for the cluster the environment names (with the per-run resources it sets), or None to train
    locally. Ray itself is imported only then: a learner's laptop has none."""
    address = ray_address()
    if not address:
        return None
    return RayBackend(address, cpus_per_run=float(os.environ.get(CPUS_PER_RUN_VAR) or 1.0),
                      gpus_per_run=float(os.environ.get(GPUS_PER_RUN_VAR) or 0.0), threads_per_run=threads_per_run)


_connect_lock = threading.Lock()


def _ray(address: str, namespace: str) -> Any:
    """Ray, connected to `address` in `namespace` (once per process)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    with _connect_lock:
        if not ray.is_initialized():
            # log_to_driver off: many runs' logs would flood the server's; they stay in the cluster's log folder
            ray.init(address=address, namespace=namespace, log_to_driver=False, configure_logging=False)
    return ray


class RayBackend:
    """Launch, follow, stop and find runs on a Ray cluster. Each run asks for `cpus_per_run` CPUs and
    `gpus_per_run` GPUs (fractional allowed); a job with "gpus" > 1 asks for that many ranks of one GPU each (of
    `cpus_per_run` CPUs each when its device is the CPU). Every call is quick: none waits for a run to train."""

    def __init__(self, address: str, namespace: str = "llm-course", cpus_per_run: float = 1.0,
                 gpus_per_run: float = 0.0, threads_per_run: int = 2, grace_s: float = DONE_GRACE_S) -> None:
        self.address, self.namespace = address, namespace
        self.cpus_per_run, self.gpus_per_run, self.threads_per_run = cpus_per_run, gpus_per_run, threads_per_run
        self.grace_s = grace_s
        self._ray = _ray(address, namespace)
        self._alive: set[str] = set()  # ids whose actor has been seen alive: no need to ask the cluster again

    def capacity(self) -> int:
        """How many runs the cluster holds at once with these per-run resources (at least 1): a server's slots."""
        total = self._ray.cluster_resources()
        if self.gpus_per_run > 0:
            return max(1, int(total.get("GPU", 0.0) / self.gpus_per_run + 1e-9))
        return max(1, int(total.get("CPU", 0.0) / max(self.cpus_per_run, 1e-9) + 1e-9))

    def launch(self, run_id: str, job: dict[str, Any]) -> None:
        """Start run `run_id` as a detached actor; Ray queues it until its resources are free."""
        from engine.runs.ray_actor import RunActor

        ray = self._ray
        ranks = int(job.get("gpus") or 1)
        env = {"PYTHONPATH": str(paths.ROOT), "RAY_USAGE_STATS_ENABLED": "0",
               "OMP_NUM_THREADS": str(self.threads_per_run)}
        options = {"name": run_id, "namespace": self.namespace, "lifetime": "detached", "max_restarts": 0,
                   "runtime_env": {"env_vars": env}}
        if ranks > 1:  # one GPU per rank (CPUs only when the run trains on the CPU)
            on_cpu = str(job["config"].get("device", "auto")) == "cpu"
            resources = {"CPU": self.cpus_per_run, **({} if on_cpu else {"GPU": 1.0})}
        else:
            resources = {"num_cpus": self.cpus_per_run, "num_gpus": self.gpus_per_run}
        self._alive.discard(run_id)
        # the actor only keeps the messages: it asks for nothing, so it starts at once and can take the job over
        # from this process (which may die), while the training it starts waits for the run's resources
        ray.remote(RunActor).options(num_cpus=0, num_gpus=0, **options).remote(
            job, self.threads_per_run, self.grace_s, resources, ranks)

    def messages(self, run_id: str, cursor: int) -> tuple[list[dict[str, Any]], int]:
        """The protocol messages since index `cursor` and the cursor after them (a very long history comes in
        several calls). A run still waiting for resources has none yet. RunGone when no such actor exists."""
        handle = self._handle(run_id)
        if run_id not in self._alive and self._state(handle) != "ALIVE":
            return [], cursor
        self._alive.add(run_id)
        ray = self._ray
        try:
            batch, new_cursor = ray.get(handle.messages.remote(cursor), timeout=CALL_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            return [], cursor
        except ray.exceptions.RayActorError as err:
            self._alive.discard(run_id)
            raise RunGone(run_id) from err
        return batch, new_cursor

    def stop(self, run_id: str, reason: str) -> None:
        """Ask the run to finish its step, save and report "done" (a run still queued does so as it starts)."""
        try:
            self._handle(run_id).stop.remote(reason)
        except RunGone:
            pass

    def kill(self, run_id: str) -> None:
        """End the run's actor now (the escalation when a stop is not obeyed); its folder keeps its last save."""
        try:
            self._ray.kill(self._handle(run_id), no_restart=True)
        except RunGone:
            pass
        self._alive.discard(run_id)

    def is_known(self, run_id: str) -> bool:
        """An actor of that name exists: training, queued, or ended and not yet released."""
        try:
            self._handle(run_id)
        except RunGone:
            return False
        return True

    def status(self, run_id: str) -> str:
        """"pending" (waiting for resources), "running", "done" (ended, messages kept) or "gone"."""
        try:
            handle = self._handle(run_id)
            state = self._state(handle)
            if state in _PENDING_STATES:
                return "pending"
            if state != "ALIVE":
                return "gone"
            return self._ray.get(handle.state.remote(), timeout=CALL_TIMEOUT_S)
        except RunGone:
            return "gone"
        except self._ray.exceptions.RayActorError:
            return "gone"
        except self._ray.exceptions.GetTimeoutError:  # alive but slow to answer: it is still training
            return "running"

    def release(self, run_id: str) -> None:
        """The manager has read "done": the actor may exit (at once when its run has ended)."""
        try:
            self._handle(run_id).release.remote()
        except RunGone:
            pass
        self._alive.discard(run_id)

    # ---- inside ----------------------------------------------------------------------------------------------

    def _handle(self, run_id: str) -> Any:
        try:
            return self._ray.get_actor(run_id, namespace=self.namespace)
        except ValueError as err:
            raise RunGone(run_id) from err

    def _state(self, handle: Any) -> str:
        """The actor's state in the cluster's table (ALIVE, PENDING_CREATION, DEAD, ...)."""
        from ray._private import state

        info = state.actors(actor_id=handle._actor_id.hex())
        return str(info.get("State", "ALIVE")) if info else "DEAD"
