"""Runs on a real Ray head (in a network namespace: bench/ray_cluster.py), driven by separate driver processes as a
course server drives them: through the course's run manager (a run streams its loss, Stop saves it, four share a
logical GPU while a fifth waits, a run outlives its server and a restarted server shows it finished), and the
backend alone for data-parallel training on Ray Train."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.ray_cluster import Driver, RayCluster, namespace_problem
from engine.runs.worker import make_job
from engine.train.config import PRESETS
from tests.conftest import wait_until

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


# ---- through the course's own run manager, as a course server uses Ray ------------------------------------


@pytest.fixture
def server(cluster: RayCluster, tmp_path: Path):
    """A course server whose runs go to Ray: a quarter of the logical GPU and half a CPU each, so four at once."""
    process = cluster.course_server(tmp_path / "runs", tmp_path / "progress.sqlite3", cpus_per_run=0.5,
                                    gpus_per_run=0.25, threads_per_run=1)
    yield process
    process.close()


def _snap_until(server: Driver, run_id: str, until, what: str) -> dict:
    seen: list[dict] = []

    def check() -> bool:
        seen.append(server.call("snapshot", run_id))
        return until(seen[-1])

    wait_until(check, DEADLINE_S, 0.2, what=lambda: f"{what}: {seen[-1] if seen else None}")
    return seen[-1]


def test_a_run_trains_on_ray_streaming_its_loss_and_stop_saves_it(server: Driver, small_text: str) -> None:
    run_id = server.call("submit", ENDLESS.to_dict(), small_text, "ann", "ann's first GPT")
    first = _snap_until(server, run_id, lambda s: s["status"] == "running" and len(s["losses"]) >= 2, "training")
    later = _snap_until(server, run_id, lambda s: s["step"] >= first["step"] + 3, "more steps")
    assert all(loss > 0 for loss in later["losses"]) and len(later["losses"]) > len(first["losses"])
    assert later["device_sentence"].startswith("Training on CPU")
    server.call("stop", run_id)
    stopped = _snap_until(server, run_id, lambda s: s["status"] != "running", "the stop")
    assert stopped["status"] == "stopped" and stopped["resumable"] and "checkpoint is saved" in stopped["message"]
    assert (Path(stopped["run_dir"]) / "ckpt.pt").exists()


def test_four_train_at_once_on_a_quarter_gpu_each_and_a_fifth_waits_its_turn(server: Driver, small_text: str) -> None:
    ids = [server.call("submit", ENDLESS.to_dict(), small_text, f"learner{i}") for i in range(5)]
    for run_id in ids[:4]:
        _snap_until(server, run_id, lambda s: s["step"] >= 1, "four runs training")
    fifth = server.call("snapshot", ids[4])
    assert fifth["status"] == "queued" and fifth["queue_position"] == 1 and server.call("running") == 4
    server.call("stop", ids[0])
    _snap_until(server, ids[4], lambda s: s["step"] >= 1, "the fifth run to train once a quarter is free")
    for run_id in ids[1:]:
        server.call("stop", run_id)
    for run_id in ids:
        assert _snap_until(server, run_id, lambda s: s["status"] != "running", "the stops")["status"] == "stopped"


def test_a_run_outlives_its_course_server_and_the_restarted_server_shows_it_finished(
        cluster: RayCluster, tmp_path: Path, small_text: str) -> None:
    def start_server() -> Driver:
        return cluster.course_server(tmp_path / "runs", tmp_path / "progress.sqlite3", cpus_per_run=0.5,
                                     threads_per_run=1)

    first = start_server()
    run_id = first.call("submit", replace(TINY, max_steps=400).to_dict(), small_text, "ann")
    _snap_until(first, run_id, lambda s: s["step"] >= 2, "training")
    first.kill()  # the course server dies mid-run

    second = start_server()  # a restarted server: its stored queue names the run, and Ray still trains it
    try:
        done = _snap_until(second, run_id, lambda s: s["status"] != "running", "the run to finish under Ray")
        assert done["status"] == "finished" and done["step"] == 400
        summary = json.loads((Path(done["run_dir"]) / "summary.json").read_text(encoding="utf-8"))
        assert summary["status"] == "finished" and summary["steps"] == 400
    finally:
        second.close()


# ---- the backend alone ---------------------------------------------------------------------------------------


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
