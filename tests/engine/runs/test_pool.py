"""The run manager as a class's pool: the fair queue and its caps, the queue kept across a restart, the deadline
that ends a hung run by itself, no stall behind a worker that does not read its pipe, forgetting ended runs, and
listings without histories. Workers here are stand-ins that hold their slot until killed (no training), except
where a test trains a real tiny run."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.runs.manager import QueueFull, RunManager
from engine.runs.pool_settings import PoolSettings
from engine.runs.queue_store import QueueStore
from engine.runs.snapshot import snapshot_from_folder
from engine.train.config import PRESETS
from engine.train.status import RunStatus

TINY = PRESETS["tiny"]
TIMED = replace(TINY, max_steps=None, time_budget=20.0)
# A stand-in worker: never reads its job, ignores SIGTERM, holds its slot until SIGKILL.
HOLD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


class Holders:
    """spawn() for RunManager: every process a stand-in; `end(i)` kills the i-th, as a run ending frees its slot."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def __call__(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, encoding="utf-8", bufsize=1)
        self.started.append(proc)
        return proc

    def end(self, i: int) -> None:
        self.started[i].kill()

    def end_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()


@pytest.fixture
def holders():
    h = Holders()
    yield h
    h.end_all()


def _pool(tmp_path: Path, holders: Holders, slots: int = 1, **kwargs) -> RunManager:
    settings = kwargs.pop("settings", PoolSettings(slots=slots, threads_per_run=1))
    return RunManager(runs_root=tmp_path / "runs", spawn=holders, settings=settings, terminate_after=0.3,
                      kill_after=0.3, **kwargs)


def test_learners_take_turns_and_each_holds_one_running_and_one_waiting(tmp_path: Path, holders: Holders,
                                                                         small_text: str) -> None:
    m = _pool(tmp_path, holders)
    a1 = m.submit(TIMED, small_text, owner="ann")
    a2 = m.submit(TIMED, small_text, owner="ann")
    with pytest.raises(QueueFull, match="one waiting"):  # the page shows this message
        m.submit(TIMED, small_text, owner="ann")
    b1 = m.submit(TIMED, small_text, owner="bob")
    c1 = m.submit(TIMED, small_text, owner="cat")
    wait_for(lambda: len(holders.started) == 1)
    snaps = {k: m.snapshot(v) for k, v in {"a2": a2, "b1": b1, "c1": c1}.items()}
    # bob and cat go before ann's second run, though she asked first; each is told when it should start
    assert {k: s.queue_position for k, s in snaps.items()} == {"b1": 1, "c1": 2, "a2": 3}
    assert snaps["b1"].starts_in_s < snaps["c1"].starts_in_s < snaps["a2"].starts_in_s
    assert 15 < snaps["b1"].starts_in_s <= 25 and m.snapshot(a1).starts_in_s is None
    order = []
    for i in range(3):
        holders.end(i)
        wait_for(lambda i=i: len(holders.started) == i + 2)
        order.append(next(k for k, v in {"a2": a2, "b1": b1, "c1": c1}.items()
                          if m.snapshot(v).status == RunStatus.RUNNING))
    assert order == ["b1", "c1", "a2"]
    assert m.snapshot(a1).status == RunStatus.FAILED  # a stand-in that dies reports nothing
    m.stop(a2)


def test_runs_asked_for_together_wait_as_one_request(tmp_path: Path, holders: Holders, small_text: str) -> None:
    m = _pool(tmp_path, holders)
    m.submit(TIMED, small_text, owner="ann")
    pair = [m.submit(TIMED, small_text, owner="ann", batch="compare") for _ in range(2)]
    with pytest.raises(QueueFull):
        m.submit(TIMED, small_text, owner="ann", batch="sweep")
    for run_id in pair:
        m.stop(run_id)
    assert [m.snapshot(i).status for i in pair] == [RunStatus.STOPPED, RunStatus.STOPPED]


def test_a_restart_brings_the_queue_back_in_its_order(tmp_path: Path, holders: Holders, small_text: str) -> None:
    store = QueueStore(tmp_path / "progress.sqlite3")
    first = _pool(tmp_path, holders, queue_store=store)
    running = first.submit(TIMED, small_text, owner="ann", label="ann's")
    waiting = [first.submit(TIMED, small_text + str(i), owner=o, label=f"{o}'s") for i, o in enumerate(("bob", "cat"))]
    wait_for(lambda: len(holders.started) == 1)
    assert [r.run_id for r in store.waiting()] == waiting  # the running run's row left the table when it started

    # A second server on the same database (the first one's death is stood in for by never asking it again).
    again = _pool(tmp_path, holders, queue_store=QueueStore(tmp_path / "progress.sqlite3"))
    wait_for(lambda: len(holders.started) == 2)  # the restarted server starts the first waiting run at once
    snaps = [again.snapshot(i) for i in waiting]
    assert [s.status for s in snaps] == [RunStatus.RUNNING, RunStatus.QUEUED] and snaps[1].queue_position == 1
    assert [s.label for s in snaps] == ["bob's", "cat's"] and snaps[0].run_dir.endswith(waiting[0][:6])
    with pytest.raises(KeyError):
        again.snapshot(running)
    assert [r.run_id for r in store.waiting()] == waiting[1:]
    again.stop(waiting[1])
    assert store.waiting() == []
    for run_id in waiting:  # the first server's memory: nothing of it may start once its holder ends
        first.stop(run_id)


def test_a_run_past_its_deadline_is_stopped_then_ended_by_itself(tmp_path: Path, holders: Holders,
                                                                  small_text: str) -> None:
    m = _pool(tmp_path, holders, settings=PoolSettings(slots=1, threads_per_run=1, deadline_margin_s=0.5))
    run_id = m.submit(replace(TINY, max_steps=None, time_budget=0.5), small_text)
    snap = m.wait(run_id, timeout=30)  # nobody pressed Stop: budget 0.5 s + margin 0.5 s, then SIGTERM, SIGKILL
    assert holders.started[0].returncode == -signal.SIGKILL
    assert snap.status == RunStatus.STOPPED and "past its time budget" in snap.message
    # the folder says so too, for a page that reads it after the manager has forgotten the run
    assert snapshot_from_folder(snap.run_dir).status == RunStatus.STOPPED


def test_stop_and_snapshot_never_wait_for_a_worker_that_does_not_read(tmp_path: Path, holders: Holders) -> None:
    m = _pool(tmp_path, holders)
    big = "x" * 4_000_000 + "y"  # a job line far past the pipe's buffer: writing it blocks until the child reads
    run_id = m.submit(TINY, big)
    wait_for(lambda: holders.started)
    done = threading.Event()

    def poke() -> None:
        m.stop(run_id)
        m.snapshot(run_id)
        m.list_runs()
        done.set()

    threading.Thread(target=poke, daemon=True).start()
    assert done.wait(10), "the manager's lock was held while writing to a worker's pipe"


def test_ended_runs_are_forgotten_and_listings_carry_no_history(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=1, runs_root=tmp_path / "runs", workers="thread", keep_ended_s=0.5)
    run_id = m.submit(replace(TINY, max_steps=12), small_text)
    snap = m.wait(run_id, timeout=60)
    assert len(snap.metrics) == 13 and len(m.list_runs()[0].metrics) == 1  # a listing: the newest record only
    assert m.list_runs()[0].step == 12
    wait_for(lambda: not m.list_runs(), timeout=30)
    with pytest.raises(KeyError):
        m.snapshot(run_id)
    assert snapshot_from_folder(snap.run_dir).status == RunStatus.FINISHED  # the page falls back to the folder
