"""A restarted server picks up where the last one stopped: its stored queue, and its runs still training on Ray.

Waiting runs are rows in the progress database (engine.runs.queue_store); they are queued again in their order. A
local run's process died with its server, so its folder tells what happened; a Ray run did not, so the server
follows it again (`attach`), replaying its messages from the start. Another server of the class attaches the
same way when a learner's page asks for a run it did not start.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from engine.runs import run_owner
from engine.runs.executors import RunRecord
from engine.train.config import TrainConfig
from engine.train.status import RunStatus

log = logging.getLogger(__name__)
# `manager` below is an engine.runs.manager.RunManager (not imported: the manager imports this module)
NOT_ON_RAY_TTL_S = 30.0  # Ray said it has no such run: not asked again for this long (pages poll every second)


def restore(manager: Any) -> None:
    """Queue again the runs that were waiting when this server last stopped, in their order, and follow
    again the Ray runs it had started (a local run's process died with the server: its folder tells)."""
    assert manager.store is not None
    for stored in manager.store.waiting():
        try:
            run = stored.to_record()
        except (KeyError, ValueError, TypeError) as err:
            log.warning("dropping stored run %s: its job could not be read (%s)", stored.run_id, err)
            manager.store.ended(stored.run_id)
            continue
        with manager._lock:
            manager._runs[run.run_id] = run
            manager._queue.append(run.run_id)
    for stored in manager.store.attached():
        if manager.ray is None or not attach(manager, stored.run_id, stored.run_dir, stored.label, stored.owner):
            manager.store.ended(stored.run_id)
    with manager._lock:
        if manager._queue or manager._running:
            manager._start_watchdog()
            manager._dispatch()


def attach(manager: Any, run_id: str, run_dir: Path | str | None, label: str = "", owner: str = "") -> bool:
    """Follow a run that trains on Ray without this server having started it. False if Ray has no such run."""
    now = time.monotonic()
    if now - manager._not_on_ray.get(run_id, -1e9) < NOT_ON_RAY_TTL_S:  # asked lately
        return False
    if manager.store is not None and (stored := manager.store.find(run_id)) is not None:
        # the stored row says whose run it is (a page asking to stop it must be its owner) and where it writes
        run_dir, label, owner = run_dir or stored.run_dir, label or stored.label, owner or stored.owner
    if not owner:  # a page's snapshot gives only the folder: the folder names its owner (engine.runs.run_owner)
        owner = (run_owner.folder_owner(run_dir) or "") if run_dir is not None else ""
    if run_dir is None or not manager.ray.is_known(run_id):
        manager._not_on_ray[run_id] = now
        return False
    run = RunRecord(run_id=run_id, label=label, config=TrainConfig(), text=None, tokenizer=None,
                    run_dir=Path(run_dir), resume_from=None, created_at=time.time(), owner=owner, attached=True,
                    status=RunStatus.RUNNING, started_at=time.time())
    with manager._lock:
        if run_id in manager._runs:
            return True
        run.deadline = now + manager.settings.deadline_s(None)
        manager._runs[run_id] = run
        manager._running.add(run_id)  # counted against this server's slots: it trains on the shared cluster
        manager._start_watchdog()
        run.thread = threading.Thread(target=manager._work, args=(run,), name=f"follow-{run_id}", daemon=True)
        run.thread.start()
    return True
