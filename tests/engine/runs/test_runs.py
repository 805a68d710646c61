"""engine.runs.manager and engine.runs.snapshot: background runs, the queue, stop (and ending a hung process), the
unobserved-run timeout, one run per GPU, snapshots read from a folder, retention."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.cost.report import report_from_folder
from engine.load.checkpoint import load_checkpoint
from engine.load.weights import export_safetensors
from engine.runs import worker
from engine.runs.manager import RunManager, RunSnapshot, get_manager
from engine.runs.retention import prune_runs
from engine.runs.snapshot import resumable, snapshot_from_folder
from engine.train.config import PRESETS
from engine.train.status import RunStatus

TINY = PRESETS["tiny"]
ENDLESS = replace(TINY, max_steps=1_000_000)  # runs until stopped


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.fixture(params=["process", "thread"])
def manager(request, tmp_path: Path):
    """Every manager test runs twice: runs in training processes of their own (the course's default) and in
    threads of the test process."""
    m = RunManager(max_concurrent=1, heartbeat_timeout=300.0, runs_root=tmp_path / "runs", workers=request.param)
    yield m
    for snap in m.list_runs():  # leave no thread training behind
        m.stop(snap.run_id)
    for snap in m.list_runs():
        m.wait(snap.run_id, timeout=30)


@pytest.fixture
def threaded(tmp_path: Path):
    """A manager training in threads only, for the tests of its own bookkeeping (queue order, limits, heartbeats,
    resume, owners): the same code decides there for a process, and the process path is the subject of the tests
    above that run both ways, of tests/engine/runs/test_worker.py and of the browser tests. Each process start is
    seconds of importing torch on two busy cores."""
    m = RunManager(max_concurrent=1, heartbeat_timeout=300.0, runs_root=tmp_path / "runs", workers="thread")
    yield m
    for snap in m.list_runs():
        m.stop(snap.run_id)
    for snap in m.list_runs():
        m.wait(snap.run_id, timeout=30)


def test_a_run_finishes_and_leaves_a_readable_folder(manager: RunManager, small_text: str) -> None:
    run_id = manager.submit(TINY, small_text, label="first run")
    snap = manager.wait(run_id, timeout=180)  # a loaded CI machine took over 60 s to start and train it
    assert isinstance(snap, RunSnapshot)
    assert snap.status == "finished" and snap.message == ""
    assert snap.label == "first run" and snap.queue_position is None
    assert [r["step"] for r in snap.metrics] == list(range(TINY.max_steps + 1))
    assert snap.samples[0][0] == 0 and all(isinstance(text, str) for _, text in snap.samples)
    assert snap.device_sentence.startswith("Training on") and snap.params and snap.started_at
    assert snap.config["n_layer"] == TINY.model.n_layer

    saved = snapshot_from_folder(snap.run_dir)
    assert saved.status == "finished" and saved.step == snap.step and saved.checkpoint_step == snap.step
    summary = saved.summary
    for key in ("start_loss", "final_train_loss", "final_val_loss", "steps", "tokens_per_s", "params",
                "device", "elapsed_s"):
        assert summary[key] is not None, key
    assert summary["steps"] == TINY.max_steps and summary["final_val_loss"] < summary["start_loss"]
    model, tok, config, metrics = load_checkpoint(snap.run_dir)
    assert config["max_steps"] == TINY.max_steps and len(metrics) == TINY.max_steps + 1


def test_stop_ends_the_run_and_saves(manager: RunManager, small_text: str) -> None:
    run_id = manager.submit(ENDLESS, small_text)
    wait_for(lambda: manager.snapshot(run_id).step >= 5)
    manager.stop(run_id)
    wait_for(lambda: manager.snapshot(run_id).status != "running", timeout=30)
    snap = manager.snapshot(run_id)
    assert snap.status == "stopped" and "Stopped at step" in snap.message
    assert (Path(snap.run_dir) / "ckpt.pt").exists()


def test_unwatched_run_stops_itself(manager: RunManager, small_text: str) -> None:
    manager.heartbeat_timeout = 0.3
    run_id = manager.submit(ENDLESS, small_text)
    snap = manager.wait(run_id, timeout=30)
    assert snap.status == "stopped"
    assert "Nobody was watching" in snap.message and "checkpoint is saved" in snap.message
    assert snapshot_from_folder(snap.run_dir).message == snap.message


def test_heartbeats_keep_a_run_alive(threaded: RunManager, small_text: str) -> None:
    """A polled run outlives several heartbeat timeouts and finishes. The timeout is a second, not less: on a
    loaded 2-core CI machine the polling thread can miss the GIL for a few hundred milliseconds."""
    manager = threaded
    manager.heartbeat_timeout = 1.0
    run_id = manager.submit(replace(TINY, max_steps=100_000), small_text)
    started = time.monotonic()
    while time.monotonic() - started < 3.5 * manager.heartbeat_timeout:
        assert manager.snapshot(run_id).status in ("queued", "running")
        manager.heartbeat(run_id)
        time.sleep(0.02)
    manager.stop(run_id)
    snap = manager.wait(run_id, timeout=30)
    assert snap.status == "stopped" and "Nobody was watching" not in snap.message


def test_never_more_than_the_limit_and_queue_positions(threaded: RunManager, small_text: str) -> None:
    manager = threaded
    ids = [manager.submit(ENDLESS, small_text, label=f"run {i}") for i in range(3)]
    wait_for(lambda: manager.snapshot(ids[0]).status == "running")
    assert [manager.snapshot(i).queue_position for i in ids] == [None, 1, 2]
    assert [manager.snapshot(i).status for i in ids] == ["running", "queued", "queued"]

    manager.stop(ids[0])
    wait_for(lambda: manager.snapshot(ids[1]).status == "running", timeout=30)
    assert manager.snapshot(ids[2]).queue_position == 1
    manager.stop(ids[2])  # a queued run just leaves the queue
    assert manager.snapshot(ids[2]).status == "stopped"
    assert "before it started" in manager.snapshot(ids[2]).message
    manager.stop(ids[1])
    manager.wait(ids[1], timeout=30)
    assert manager.peak_running == 1
    assert [s.run_id for s in manager.list_runs()] == ids


def test_two_at_once_when_allowed(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=2, runs_root=tmp_path, workers="thread")
    ids = [m.submit(replace(TINY, max_steps=300), small_text) for _ in range(3)]
    for i in ids:
        m.wait(i, timeout=180)
    assert m.peak_running == 2
    assert all(m.snapshot(i).status == "finished" for i in ids)


def test_divergence_and_failure_are_explained(manager: RunManager, small_text: str) -> None:
    bad = manager.submit(replace(TINY, lr=1e30), small_text)
    assert manager.wait(bad, timeout=30).status == "diverged"
    assert "learning rate is too high" in manager.snapshot(bad).message
    assert not (Path(manager.snapshot(bad).run_dir) / "ckpt.pt").exists()  # NaN weights are not worth keeping

    broken = manager.submit(TINY.with_changes(block_size=5000), small_text)
    snap = manager.wait(broken, timeout=30)
    assert snap.status == "failed" and "block_size" in snap.message


def test_resume_through_the_manager(threaded: RunManager, small_text: str) -> None:
    manager = threaded
    first = manager.wait(manager.submit(replace(TINY, max_steps=10), small_text), timeout=30)
    second_id = manager.submit(replace(TINY, max_steps=25), small_text, resume_from=Path(first.run_dir))
    second = manager.wait(second_id, timeout=30)
    assert second.status == "finished"
    steps = [r["step"] for r in second.metrics]
    assert steps == list(range(26))  # the history of the first run, then steps 11..25


def test_long_runs_are_thinned_but_keep_evaluations(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=1, runs_root=tmp_path, max_points=100, workers="thread")
    snap = m.wait(m.submit(replace(TINY, max_steps=400), small_text), timeout=180)
    assert len(snap.metrics) <= 101
    assert [r["step"] for r in snap.metrics if r["val_loss"] is not None] == list(range(0, 401, TINY.eval_interval))
    assert snap.metrics[-1]["step"] == 400


def test_get_manager_is_a_singleton(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runs import manager as runs

    monkeypatch.setenv("LLM_COURSE_DB", str(tmp_path / "progress.sqlite3"))  # its queue: never the project's data/
    monkeypatch.setenv("LLM_COURSE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(runs, "_manager", None)
    assert get_manager() is get_manager()
    assert get_manager().store.url.endswith(str(tmp_path / "progress.sqlite3"))


# ---- the run model: statuses, snapshots read from a folder -------------------------------------------------


def test_statuses_know_whether_they_are_active() -> None:
    assert {s for s in RunStatus if s.active} == {RunStatus.QUEUED, RunStatus.RUNNING}
    assert RunStatus.INTERRUPTED.ended and RunStatus.FINISHED.ended and not RunStatus.RUNNING.ended
    assert RunStatus("finished") == "finished"  # plain strings from the worker and summary.json compare equal
    assert RunStatus.parse("something-new", RunStatus.STOPPED) is RunStatus.STOPPED


def _write_folder(run_dir: Path, summary: dict | None, steps: int = 3, ckpt: bool = True) -> Path:
    run_dir.mkdir(parents=True)
    records = [{"step": s, "train_loss": 4.0 - s / 10, "val_loss": 4.1 if s == 0 else None} for s in range(steps + 1)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "config.json").write_text(json.dumps({"train": {"n_layer": 2}, "device": "Training on CPU", "params": 9}))
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps({"steps": steps, **summary}))
    if ckpt:  # a checkpoint that reads (engine.runs.snapshot.resumable opens it), without real weights
        torch.save({"model": {}, "step": steps}, run_dir / "ckpt.pt")
    return run_dir


def test_a_folder_left_running_by_a_killed_server_reads_as_interrupted_and_resumable(tmp_path: Path) -> None:
    snap = snapshot_from_folder(_write_folder(tmp_path / "r", {"status": "running", "message": ""}, steps=7), "id1")
    assert snap.status is RunStatus.INTERRUPTED and not snap.active
    assert snap.resumable and snap.checkpoint_step == 7 and "step 7" in snap.message and "Resume" in snap.message
    assert snap.run_id == "id1" and snap.step == 7 and snap.config == {"n_layer": 2} and snap.params == 9
    assert snap.start_val_loss == 4.1

    unsaved = snapshot_from_folder(_write_folder(tmp_path / "u", {"status": "running"}, ckpt=False))
    assert unsaved.status is RunStatus.INTERRUPTED and not unsaved.resumable and "before it could save" in unsaved.message


def test_folder_statuses_and_old_folders(tmp_path: Path) -> None:
    finished = snapshot_from_folder(_write_folder(tmp_path / "f", {"status": "finished", "message": "done"}))
    assert finished.status is RunStatus.FINISHED and finished.message == "done" and not finished.resumable
    stopped = snapshot_from_folder(_write_folder(tmp_path / "s", {"status": "stopped", "message": "orphan"}))
    assert stopped.status is RunStatus.STOPPED and stopped.resumable and stopped.checkpoint_step == 3
    old = snapshot_from_folder(_write_folder(tmp_path / "o", None))  # before summary.json existed
    assert old.status is RunStatus.STOPPED and old.step == 3
    nothing = snapshot_from_folder(tmp_path / "never-written")  # the server died before the first save
    assert nothing.status is RunStatus.INTERRUPTED and not nothing.resumable and nothing.metrics == []


def test_any_readable_checkpoint_is_resumable_and_nothing_else(tmp_path: Path) -> None:
    """A run whose final save failed (failed, its last periodic checkpoint intact) resumes from that checkpoint's
    own step; a finished or diverged run never does; a ckpt.pt that does not read (cut short, or not a checkpoint)
    is no checkpoint."""
    failed = _write_folder(tmp_path / "failed", {"status": "failed", "message": "could not save: disk full"}, steps=9)
    torch.save({"model": {}, "step": 6}, failed / "ckpt.pt")  # the final save (step 9) never reached the disk
    snap = snapshot_from_folder(failed)
    assert snap.status is RunStatus.FAILED and snap.resumable and snap.checkpoint_step == 6
    assert resumable("failed", failed) and resumable(RunStatus.INTERRUPTED, failed)
    assert not resumable("finished", failed) and not resumable("diverged", failed) and not resumable("running", failed)

    whole = (failed / "ckpt.pt").read_bytes()
    (failed / "ckpt.pt").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    assert not resumable("failed", failed) and snapshot_from_folder(failed).checkpoint_step is None
    (failed / "ckpt.pt").write_bytes(b"weights")
    assert not snapshot_from_folder(failed).resumable
    assert not resumable("stopped", tmp_path / "never-written")


# ---- a training process that ignores stop requests --------------------------------------------------------

HANG = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def _spawner(started: list[subprocess.Popen], hang_first: int = 10**6):
    """A spawn() for RunManager whose first `hang_first` processes ignore stop requests and SIGTERM alike."""
    def spawn() -> subprocess.Popen:
        if len(started) >= hang_first:
            proc = worker.spawn()
        else:
            proc = subprocess.Popen([sys.executable, "-c", HANG], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, encoding="utf-8", bufsize=1)
        started.append(proc)
        return proc
    return spawn


def test_a_hung_worker_is_terminated_then_killed_and_frees_its_slot(tmp_path: Path, small_text: str) -> None:
    started: list[subprocess.Popen] = []
    m = RunManager(max_concurrent=1, runs_root=tmp_path / "runs", spawn=_spawner(started, hang_first=1),
                   terminate_after=0.5, kill_after=0.5)
    hung_dir = _write_folder(tmp_path / "hung", {"status": "running"}, steps=42)  # it had saved at step 42
    try:
        hung = m.submit(ENDLESS, small_text, run_dir=hung_dir)
        nxt = m.submit(ENDLESS, small_text)
        wait_for(lambda: m.snapshot(hung).status == "running" and started)
        assert m.snapshot(nxt).status == "queued"
        m.stop(hung)
        snap = m.wait(hung, timeout=20)
        assert started[0].returncode == -signal.SIGKILL  # SIGTERM was ignored, so it took SIGKILL
        assert snap.status == "stopped" and "did not stop within 0.5 seconds" in snap.message
        assert "step 42" in snap.message and snap.resumable and snap.checkpoint_step == 42
        wait_for(lambda: m.snapshot(nxt).step >= 2)  # the slot is free: the next run trains
        assert m.slots() == {0: nxt}
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
        for snap in m.list_runs():
            m.stop(snap.run_id)
        m.wait(nxt, timeout=30)


def test_one_run_per_gpu_each_on_its_own(tmp_path: Path, small_text: str) -> None:
    started: list[subprocess.Popen] = []
    m = RunManager(runs_root=tmp_path, n_gpus=2, spawn=_spawner(started), terminate_after=0.2, kill_after=0.2)
    assert m.max_concurrent == 2
    try:
        ids = [m.submit(TINY, small_text) for _ in range(3)]
        wait_for(lambda: len(started) == 2)
        snaps = [m.snapshot(i) for i in ids]
        assert [s.status for s in snaps] == ["running", "running", "queued"]
        assert [s.gpu for s in snaps[:2]] == ["cuda:0", "cuda:1"] and snaps[2].gpu is None
        assert [s.config["device"] for s in snaps[:2]] == ["cuda:0", "cuda:1"]
        assert m.slots() == {0: ids[0], 1: ids[1]}
        m.stop(ids[0])  # slot 0 (GPU 0) frees up and goes to the run that waited
        wait_for(lambda: m.snapshot(ids[2]).status == "running")
        assert m.snapshot(ids[2]).gpu == "cuda:0" and m.slots() == {0: ids[2], 1: ids[1]}
    finally:  # end every fake worker, including one the manager starts while we do (a freed slot is refilled)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(m.snapshot(i).active for i in ids):
            for proc in list(started):
                if proc.poll() is None:
                    proc.kill()
            time.sleep(0.1)
        for i in ids:
            m.wait(i, timeout=20)
    assert m.slots() == {}


def test_one_gpu_or_none_keeps_the_configured_device(tmp_path: Path, small_text: str) -> None:
    started: list[subprocess.Popen] = []
    m = RunManager(runs_root=tmp_path, n_gpus=0, spawn=_spawner(started), terminate_after=0.2, kill_after=0.2)
    run_id = m.submit(TINY, small_text)
    try:
        wait_for(lambda: started)
        assert m.max_concurrent == 1 and m.snapshot(run_id).gpu is None
        assert m.snapshot(run_id).config["device"] == TINY.device
    finally:
        m.stop(run_id)
        m.wait(run_id, timeout=20)


# ---- retention ----------------------------------------------------------------------------------------------


def _aged(run_dir: Path, days: float) -> Path:
    t = time.time() - days * 86400
    for p in [run_dir, *run_dir.iterdir()]:
        os.utime(p, (t, t))
    return run_dir


def test_prune_keeps_protected_recent_and_newest_runs(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    old = [_aged(_write_folder(root / f"old{i}", {"status": "finished"}), days=40 + i) for i in range(3)]
    mid = [_aged(_write_folder(root / f"mid{i}", {"status": "finished"}), days=2 + i) for i in range(4)]
    fresh = _write_folder(root / "fresh", {"status": "running"})  # a training process may still write it
    (root / "notes").mkdir()  # not a run folder: never touched
    deleted = prune_runs(root, protected=[old[0]], keep=3, max_age_days=30)
    assert set(deleted) == {old[1], old[2], mid[2], mid[3]}  # too old, or more than 3 newer folders
    assert all(d.exists() for d in (old[0], mid[0], mid[1], fresh, root / "notes"))
    assert prune_runs(tmp_path / "missing") == []


def test_submitting_prunes_but_never_a_protected_or_active_run(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=1, runs_root=tmp_path, workers="thread")
    mine = _aged(_write_folder(tmp_path / "learners-run", {"status": "finished"}), days=90)
    stale = _aged(_write_folder(tmp_path / "forgotten", {"status": "finished"}), days=90)
    run_id = m.submit(TINY, small_text, protected=[mine])
    m.wait(run_id, timeout=180)
    assert mine.exists() and not stale.exists() and Path(m.snapshot(run_id).run_dir).exists()


def test_a_page_acting_for_a_learner_cannot_stop_another_learners_run(threaded: RunManager, small_text: str) -> None:
    manager = threaded
    run_id = manager.submit(ENDLESS, small_text, owner="7")
    with pytest.raises(PermissionError):
        manager.stop(run_id, owner="8")
    assert manager.snapshot(run_id).status.active
    manager.stop(run_id, owner="7")
    wait_for(lambda: not manager.snapshot(run_id).status.active, timeout=30)


def test_a_run_of_another_learner_cannot_be_resumed_fine_tuned_from_reported_or_downloaded(
        threaded: RunManager, small_text: str, tmp_path: Path) -> None:
    """Whatever run folder a crafted run key or fact names, the engine checks the folder's owner where it is used."""
    mine = threaded.wait(threaded.submit(replace(TINY, max_steps=5), small_text, owner="7"), timeout=30)
    for kind in ("resume_from", "finetune_from"):
        with pytest.raises(PermissionError, match="another learner's"):
            threaded.submit(replace(TINY, max_steps=8), small_text, owner="8", **{kind: mine.run_dir})
    with pytest.raises(PermissionError, match="report card"):
        report_from_folder(mine.run_dir, owner="8")
    with pytest.raises(PermissionError, match="download its weights"):
        export_safetensors(mine.run_dir, tmp_path / "theirs.safetensors", owner="8")
    assert not (tmp_path / "theirs.safetensors").exists()
    assert report_from_folder(mine.run_dir, owner="7").steps == 5  # the owner, and an instructor's page (None)
    assert report_from_folder(mine.run_dir, owner=None).steps == 5
    assert export_safetensors(mine.run_dir, tmp_path / "mine.safetensors", owner="7").exists()
    again = threaded.submit(replace(TINY, max_steps=8), small_text, owner="7", resume_from=mine.run_dir)
    assert threaded.wait(again, timeout=30).status == "finished"
