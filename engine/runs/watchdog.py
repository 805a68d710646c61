"""The run manager's watchdog: what ends a run that nobody ends, and what the manager forgets.

A closed tab stops polling, a hung training process stops answering, and a run can outlive its budget; none of
them may hold a slot for ever. Once a second, under the manager's lock, the watchdog stops a run nobody has polled
for `heartbeat_timeout` seconds (not on Ray: a run there outlives the servers that watch it) and a run past its
deadline, ends a process that ignores a stop request (SIGTERM, then SIGKILL; on Ray the follower kills the actor),
and forgets runs that ended long ago (their folders keep them). Signals only: nothing here writes to a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from engine.runs.executors import RunRecord
from engine.train.status import RunStatus

log = logging.getLogger(__name__)
# `manager` below is an engine.runs.manager.RunManager (not imported: the manager imports this module)


def escalate(manager: Any, run: RunRecord, now: float) -> None:
    """A run that has not ended `terminate_after` s after a stop request is ended: a process gets SIGTERM, and
    SIGKILL `kill_after` s later; a Ray run's actor is killed. (A run in a thread keeps its slot.)"""
    if run.stop_requested_at is None or now - run.stop_requested_at <= manager.terminate_after:
        return
    if manager.ray is not None:
        run.kill_requested = True
        return
    proc = run.process
    if proc is None or proc.poll() is not None:
        return
    if run.terminated_at is None:
        log.warning("run %s did not stop within %g s of being asked: sending SIGTERM", run.run_id,
                    manager.terminate_after)
        run.terminated_at, run.escalated = now, "terminate"
        with contextlib.suppress(OSError):
            proc.terminate()
    elif run.escalated != "kill" and now - run.terminated_at > manager.kill_after:
        log.warning("run %s ignored SIGTERM for %g s: sending SIGKILL", run.run_id, manager.kill_after)
        run.escalated = "kill"
        with contextlib.suppress(OSError):
            proc.kill()


def watch(manager: Any) -> None:
    """Stop runs nobody has polled for heartbeat_timeout seconds and runs past their deadline; end processes
    that ignore a stop request; forget runs that ended long ago (their folders keep them)."""
    while True:
        time.sleep(max(0.02, min(1.0, manager.heartbeat_timeout / 5, manager.terminate_after / 5,
                                manager.kill_after / 5)))
        now, dequeued = time.monotonic(), []
        with manager._lock:
            for run in list(manager._runs.values()):
                # a Ray run outlives the pages and the servers that watch it: only its deadline ends it
                if run.status.active and now - run.last_heartbeat > manager.heartbeat_timeout and manager.ray is None:
                    if manager._stop(run, "timeout"):
                        dequeued.append(run.run_id)
                if run.status == RunStatus.RUNNING and run.deadline is not None and now > run.deadline:
                    manager._stop(run, "deadline")
                if run.status == RunStatus.RUNNING:
                    escalate(manager, run, now)
            evict_ended(manager, time.time())
        for run_id in dequeued:
            if manager.store is not None:
                manager._store_call(manager.store.ended, run_id)


def evict_ended(manager: Any, now: float) -> None:
    ended = sorted((r.finished_at, r.run_id) for r in manager._runs.values()
                   if r.status.ended and r.finished_at is not None)
    too_many = len(ended) - manager.keep_ended_max
    for i, (finished_at, run_id) in enumerate(ended):
        if i < too_many or now - finished_at > manager.keep_ended_s:
            del manager._runs[run_id]
