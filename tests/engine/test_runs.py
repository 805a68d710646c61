"""engine.runs: background runs, the queue, stop, the unobserved-run timeout, summaries read from disk."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.checkpoint import load_checkpoint
from engine.config import PRESETS
from engine.runs import RunManager, RunSnapshot, get_manager, list_saved_runs, read_run_summary

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
    m = RunManager(max_concurrent=1, heartbeat_timeout=60.0, runs_root=tmp_path / "runs", workers=request.param)
    yield m
    for snap in m.list_runs():  # leave no thread training behind
        m.stop(snap.run_id)
    for snap in m.list_runs():
        m.wait(snap.run_id, timeout=30)


def test_a_run_finishes_and_leaves_a_readable_folder(manager: RunManager, small_text: str) -> None:
    run_id = manager.submit(TINY, small_text, label="first run")
    snap = manager.wait(run_id, timeout=60)
    assert isinstance(snap, RunSnapshot)
    assert snap.status == "finished" and snap.message == ""
    assert snap.label == "first run" and snap.queue_position is None
    assert [r["step"] for r in snap.metrics] == list(range(TINY.max_steps + 1))
    assert snap.samples[0][0] == 0 and all(isinstance(text, str) for _, text in snap.samples)
    assert snap.device_sentence.startswith("Training on") and snap.params and snap.started_at
    assert snap.config["n_layer"] == TINY.n_layer

    summary = read_run_summary(snap.run_dir)
    for key in ("start_loss", "final_train_loss", "final_val_loss", "steps", "tokens_per_s", "params",
                "device", "elapsed_s"):
        assert summary[key] is not None, key
    assert summary["steps"] == TINY.max_steps and summary["final_val_loss"] < summary["start_loss"]
    assert list_saved_runs(manager.runs_root)[0]["run_dir"] == snap.run_dir
    model, tok, config, metrics = load_checkpoint(snap.run_dir)
    assert config["max_steps"] == TINY.max_steps and len(metrics) == TINY.max_steps + 1


def test_stop_returns_within_a_second_and_saves(manager: RunManager, small_text: str) -> None:
    run_id = manager.submit(ENDLESS, small_text)
    wait_for(lambda: manager.snapshot(run_id).step >= 5)
    t = time.monotonic()
    manager.stop(run_id)
    assert time.monotonic() - t < 1.0
    wait_for(lambda: manager.snapshot(run_id).status != "running", timeout=10)
    snap = manager.snapshot(run_id)
    assert snap.status == "stopped" and "Stopped at step" in snap.message
    assert (Path(snap.run_dir) / "ckpt.pt").exists()


def test_unwatched_run_stops_itself(manager: RunManager, small_text: str) -> None:
    manager.heartbeat_timeout = 0.3
    run_id = manager.submit(ENDLESS, small_text)
    snap = manager.wait(run_id, timeout=30)
    assert snap.status == "stopped"
    assert "Nobody was watching" in snap.message and "checkpoint is saved" in snap.message
    assert read_run_summary(snap.run_dir)["message"] == snap.message


def test_heartbeats_keep_a_run_alive(manager: RunManager, small_text: str) -> None:
    manager.heartbeat_timeout = 0.3
    run_id = manager.submit(replace(TINY, max_steps=200), small_text)
    while manager.snapshot(run_id).status in ("queued", "running"):
        manager.heartbeat(run_id)
        time.sleep(0.02)
    assert manager.snapshot(run_id).status == "finished"


def test_never_more_than_the_limit_and_queue_positions(manager: RunManager, small_text: str) -> None:
    ids = [manager.submit(ENDLESS, small_text, label=f"run {i}") for i in range(3)]
    wait_for(lambda: manager.snapshot(ids[0]).status == "running")
    assert [manager.snapshot(i).queue_position for i in ids] == [None, 1, 2]
    assert [manager.snapshot(i).status for i in ids] == ["running", "queued", "queued"]

    manager.stop(ids[0])
    wait_for(lambda: manager.snapshot(ids[1]).status == "running", timeout=10)
    assert manager.snapshot(ids[2]).queue_position == 1
    manager.stop(ids[2])  # a queued run just leaves the queue
    assert manager.snapshot(ids[2]).status == "stopped"
    assert "before it started" in manager.snapshot(ids[2]).message
    manager.stop(ids[1])
    manager.wait(ids[1], timeout=10)
    assert manager.peak_running == 1
    assert [s.run_id for s in manager.list_runs()] == ids


def test_two_at_once_when_allowed(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=2, runs_root=tmp_path)
    ids = [m.submit(replace(TINY, max_steps=300), small_text) for _ in range(3)]
    for i in ids:
        m.wait(i, timeout=60)
    assert m.peak_running == 2
    assert all(m.snapshot(i).status == "finished" for i in ids)


def test_divergence_and_failure_are_explained(manager: RunManager, small_text: str) -> None:
    bad = manager.submit(replace(TINY, lr=1e30), small_text)
    assert manager.wait(bad, timeout=30).status == "diverged"
    assert "learning rate is too high" in manager.snapshot(bad).message
    assert not (Path(manager.snapshot(bad).run_dir) / "ckpt.pt").exists()  # NaN weights are not worth keeping

    broken = manager.submit(replace(TINY, block_size=5000), small_text)
    snap = manager.wait(broken, timeout=30)
    assert snap.status == "failed" and "block_size" in snap.message


def test_resume_through_the_manager(manager: RunManager, small_text: str) -> None:
    first = manager.wait(manager.submit(replace(TINY, max_steps=10), small_text), timeout=30)
    second_id = manager.submit(replace(TINY, max_steps=25), small_text, resume_from=Path(first.run_dir))
    second = manager.wait(second_id, timeout=30)
    assert second.status == "finished"
    steps = [r["step"] for r in second.metrics]
    assert steps == list(range(26))  # the history of the first run, then steps 11..25


def test_long_runs_are_thinned_but_keep_evaluations(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=1, runs_root=tmp_path, max_points=100)
    snap = m.wait(m.submit(replace(TINY, max_steps=400), small_text), timeout=60)
    assert len(snap.metrics) <= 101
    assert [r["step"] for r in snap.metrics if r["val_loss"] is not None] == list(range(0, 401, TINY.eval_interval))
    assert snap.metrics[-1]["step"] == 400


def test_get_manager_is_a_singleton() -> None:
    assert get_manager() is get_manager()
