"""engine.runs.ray_backend: runs on a real Ray head (in a network namespace, bench/ray_cluster.py), driven by
separate driver processes as a course server would drive them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.runs.worker import make_job
from engine.train.config import PRESETS
from tests.conftest import wait_until
from bench.ray_cluster import Driver, DriverError, RayCluster, namespace_problem

pytest.importorskip("ray", reason="ray is installed by `make test` (requirements-dev.txt)")
_PROBLEM = namespace_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")

TINY = replace(PRESETS["tiny"], device="cpu", threads=1)
ENDLESS = replace(TINY, max_steps=1_000_000)
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def cluster():
    with RayCluster(num_cpus=4, num_gpus=1) as head:  # one logical GPU on the CPU, for fractional packing
        yield head


@pytest.fixture(scope="module")
def driver(cluster: RayCluster):
    """A course server's backend: a quarter of the GPU and half a CPU per run."""
    process = cluster.driver(cpus_per_run=0.5, gpus_per_run=0.25, threads_per_run=1)
    yield process
    process.close()


def _job(config, text: str, run_dir: Path, **extra) -> dict:
    return {**make_job(config, text, None, None, run_dir, heartbeat_timeout=300.0), **extra}


def _read(driver: Driver, run_id: str, seen: list[dict], cursor: int = 0) -> int:
    """Append the run's new messages to `seen`; return the new cursor."""
    batch, cursor = driver.call("messages", run_id, cursor)
    seen.extend(batch)
    return cursor


def _follow_until(driver: Driver, run_id: str, until, seen: list[dict] | None = None) -> list[dict]:
    """Read the run's messages until `until(messages)` holds; return them all."""
    seen = [] if seen is None else seen
    cursor = [len(seen)]

    def check() -> bool:
        cursor[0] = _read(driver, run_id, seen, cursor[0])
        return until(seen)

    wait_until(check, DEADLINE_S, 0.2, what=lambda: f"run {run_id}: {[m['event'] for m in seen][-5:]}")
    return seen


def _ended(messages: list[dict]) -> bool:
    return bool(messages) and messages[-1]["event"] == "done"


def _trained_to(step: int):
    return lambda messages: any(m["event"] == "record" and m["record"]["step"] >= step for m in messages)


def test_a_run_trains_on_ray_and_reports_the_protocol(driver: Driver, tmp_path: Path, small_text: str) -> None:
    driver.call("launch", "plain", _job(replace(TINY, max_steps=12), small_text, tmp_path / "plain"))
    messages = _follow_until(driver, "plain", _ended)
    assert messages[0]["event"] == "started" and messages[0]["params"] > 0
    records = [m["record"] for m in messages if m["event"] == "record"]
    assert [r["step"] for r in records] == list(range(13))
    assert all(r["train_loss"] > 0 for r in records)
    assert messages[-1]["status"] == "finished" and messages[-1]["summary"]["steps"] == 12
    assert driver.call("status", "plain") == "done"
    assert (tmp_path / "plain" / "ckpt.pt").exists()
    driver.call("release", "plain")  # the manager has read "done": the actor goes, the folder stays
    wait_until(lambda: not driver.call("is_known", "plain"), DEADLINE_S, what="the released actor to exit")
    assert driver.call("status", "plain") == "gone"
    with pytest.raises(DriverError) as gone:
        driver.call("messages", "plain", 0)
    assert gone.value.kind == "RunGone"


def test_stop_saves_the_run(driver: Driver, tmp_path: Path, small_text: str) -> None:
    driver.call("launch", "stopped", _job(ENDLESS, small_text, tmp_path / "stopped"))
    messages = _follow_until(driver, "stopped", _trained_to(3))
    driver.call("stop", "stopped", "user")
    messages = _follow_until(driver, "stopped", _ended, messages)
    assert messages[-1]["status"] == "stopped" and "checkpoint is saved" in messages[-1]["message"]
    assert (tmp_path / "stopped" / "ckpt.pt").exists()
    summary = json.loads((tmp_path / "stopped" / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped"
    driver.call("release", "stopped")


def test_a_quarter_gpu_each_trains_four_at_once_and_the_fifth_waits(driver: Driver, tmp_path: Path,
                                                                     small_text: str) -> None:
    ids = [f"quarter-{i}" for i in range(5)]
    for run_id in ids[:4]:
        driver.call("launch", run_id, _job(ENDLESS, small_text, tmp_path / run_id))
    for run_id in ids[:4]:
        _follow_until(driver, run_id, _trained_to(1))
    driver.call("launch", ids[4], _job(ENDLESS, small_text, tmp_path / ids[4]))
    wait_until(lambda: driver.call("status", ids[4]) == "pending", DEADLINE_S, what="the fifth run to queue")
    # all four train at once: each goes on making steps while the fifth waits for a quarter of the GPU
    steps = {run_id: _last_step(driver, run_id) for run_id in ids[:4]}
    for run_id in ids[:4]:
        _follow_until(driver, run_id, _trained_to(steps[run_id] + 2))
    assert driver.call("status", ids[4]) == "pending" and driver.call("messages", ids[4], 0) == [[], 0]
    assert [driver.call("status", run_id) for run_id in ids[:4]] == ["running"] * 4

    driver.call("stop", ids[0], "user")
    _follow_until(driver, ids[0], _ended)  # its actor keeps the messages, but its quarter of the GPU is free
    _follow_until(driver, ids[4], _trained_to(1))
    for run_id in ids[1:]:
        driver.call("stop", run_id, "user")
    for run_id in ids:
        assert _follow_until(driver, run_id, _ended)[-1]["status"] == "stopped"
        driver.call("release", run_id)


def _last_step(driver: Driver, run_id: str) -> int:
    messages, _ = driver.call("messages", run_id, 0)
    return max(m["record"]["step"] for m in messages if m["event"] == "record")


def test_a_run_outlives_the_server_that_launched_it(cluster: RayCluster, tmp_path: Path, small_text: str) -> None:
    first = cluster.driver(cpus_per_run=0.5)
    first.call("launch", "orphan", _job(replace(TINY, max_steps=400), small_text, tmp_path / "orphan"))
    seen = _follow_until(first, "orphan", _trained_to(2))
    first.kill()  # the course server dies mid-run
    assert not _ended(seen)

    second = cluster.driver(cpus_per_run=0.5)  # a restarted server finds the run by its id
    try:
        assert second.call("is_known", "orphan")
        messages = _follow_until(second, "orphan", _ended)
        assert messages[0]["event"] == "started"
        assert messages[-1]["status"] == "finished" and messages[-1]["summary"]["steps"] == 400
        summary = json.loads((tmp_path / "orphan" / "summary.json").read_text(encoding="utf-8"))
        assert summary["status"] == "finished" and summary["steps"] == 400
        second.call("release", "orphan")
    finally:
        second.close()


def test_two_ranks_train_data_parallel_on_ray_train(driver: Driver, tmp_path: Path, small_text: str) -> None:
    driver.call("launch", "ddp", _job(replace(TINY, max_steps=12), small_text, tmp_path / "ddp", gpus=2))
    messages = _follow_until(driver, "ddp", _ended)
    assert "2 processes" in messages[0]["device_sentence"]  # world size 2
    records = [m["record"] for m in messages if m["event"] == "record"]
    assert [r["step"] for r in records] == list(range(13))
    assert messages[-1]["status"] == "finished", messages[-1]["message"]
    assert (tmp_path / "ddp" / "ckpt.pt").exists()
    driver.call("release", "ddp")  # it exits once Ray Train has wound up, removing Ray Train's temp folder
    wait_until(lambda: not driver.call("is_known", "ddp"), DEADLINE_S, what="the data-parallel run's actor to exit")
