"""Runs on a real Ray head (in a network namespace: bench/ray_cluster.py), driven by separate driver processes as a
course server drives them, through the course's run manager: a run streams its loss, Stop saves it, four share a
logical GPU while a fifth waits, runs outlive their server and a restarted server follows them to the end or stops
them, and a run on two GPUs trains data-parallel on Ray Train."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bench.ray_cluster import Driver, RayCluster, namespace_problem
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


def test_four_at_once_on_a_quarter_gpu_each_a_fifth_waits_stop_saves_and_a_restarted_server_takes_over(
        cluster: RayCluster, tmp_path: Path, small_text: str) -> None:
    """Five runs through one course server: four train at once on a quarter of the logical GPU each and stream their
    loss, the fifth waits; Stop saves one and the fifth takes its quarter. Then the course server dies: Ray keeps
    training, and a restarted server (its stored queue names the runs) follows the fifth to its last step and stops
    the others, which a server that did not start them can do."""
    def start_server() -> Driver:
        return cluster.course_server(tmp_path / "runs", tmp_path / "progress.sqlite3", cpus_per_run=0.5,
                                     gpus_per_run=0.25, threads_per_run=1)

    first_server = start_server()
    configs = [ENDLESS] * 4 + [replace(TINY, max_steps=120)]
    ids = [first_server.call("submit", c.to_dict(), small_text, f"learner{i}", f"run {i}") for i, c in enumerate(configs)]
    first = _snap_until(first_server, ids[0], lambda s: s["status"] == "running" and len(s["losses"]) >= 2, "training")
    for run_id in ids[1:4]:
        _snap_until(first_server, run_id, lambda s: s["step"] >= 1, "four runs training")
    fifth = first_server.call("snapshot", ids[4])
    assert fifth["status"] == "queued" and fifth["queue_position"] == 1 and first_server.call("running") == 4
    later = _snap_until(first_server, ids[0], lambda s: s["step"] >= first["step"] + 3, "more steps")  # it streams
    assert all(loss > 0 for loss in later["losses"]) and len(later["losses"]) > len(first["losses"])
    assert later["device_sentence"].startswith("Training on CPU")

    first_server.call("stop", ids[0])  # Stop saves it, and its quarter of the GPU goes to the run that waited
    stopped = _snap_until(first_server, ids[0], lambda s: s["status"] != "running", "the stop")
    assert stopped["status"] == "stopped" and stopped["resumable"] and "checkpoint is saved" in stopped["message"]
    assert (Path(stopped["run_dir"]) / "ckpt.pt").exists()
    _snap_until(first_server, ids[4], lambda s: s["step"] >= 1, "the fifth run to train once a quarter is free")
    first_server.kill()  # the course server dies mid-run

    second_server = start_server()
    try:
        done = _snap_until(second_server, ids[4], lambda s: s["status"] != "running", "the fifth to finish under Ray")
        assert done["status"] == "finished" and done["step"] == 120
        summary = json.loads((Path(done["run_dir"]) / "summary.json").read_text(encoding="utf-8"))
        assert summary["status"] == "finished" and summary["steps"] == 120
        for run_id in ids[1:4]:  # still training, and stopped by the server that did not start them
            assert second_server.call("snapshot", run_id)["status"] == "running"
            second_server.call("stop", run_id)
        stopped = _snap_until(second_server, ids[1], lambda s: s["status"] != "running", "the stop")
        assert stopped["status"] == "stopped"
    finally:
        second_server.close()


def test_a_run_on_two_gpus_trains_data_parallel_on_ray_train(server: Driver, small_text: str) -> None:
    """Two ranks on Ray Train (on CPUs here: gloo, one CPU per rank), set up by Ray, the engine's DDP path inside."""
    run_id = server.call("submit", replace(TINY, max_steps=12).to_dict(), small_text, "ann", "two ranks", 2)
    done = _snap_until(server, run_id, lambda s: s["status"] not in ("queued", "running"), "the two-rank run")
    assert done["status"] == "finished", done["message"]
    assert "2 processes" in done["device_sentence"] and done["step"] == 12  # world size 2
    assert (Path(done["run_dir"]) / "ckpt.pt").exists()


def test_two_course_servers_on_ray_a_run_started_on_one_is_watched_and_stopped_on_the_other(
        cluster: RayCluster, tmp_path: Path) -> None:
    """Two real course servers (Streamlit) inside the cluster's namespace, sharing one SQLite file (the machine's
    PostgreSQL is out of the namespace's reach; tests/e2e/test_two_servers_browser.py covers it) and one runs
    folder, training on Ray; Chromium, in the namespace too, drives them (ray_two_servers_in_browser.py)."""
    import os
    import signal
    import sys

    import paths
    from course.loader import load_course
    from course.progress import ProgressStore

    db, runs = tmp_path / "progress.sqlite3", tmp_path / "runs"
    lesson = load_course().entry("training-loop").lesson
    card = next(i for i, c in enumerate(lesson.cards) if c.widget is not None and c.widget.name == "train_run")
    store = ProgressStore(db)
    me = store.get_or_create_learner("Ray learner")
    store.set_card(me.id, lesson.id, card)
    store.touch_learner(me.id)
    store.close()
    env = {paths.DB_VAR: str(db), paths.RUNS_VAR: str(runs), paths.UPLOADS_VAR: str(tmp_path / "uploads"),
           "LLM_COURSE_RAY_ADDRESS": cluster.address, "LLM_COURSE_RAY_CPUS_PER_RUN": "0.5",
           "LLM_COURSE_RAY_GPUS_PER_RUN": "0.25", "LLM_COURSE_RUN_THREADS": "1"}
    servers = []
    try:
        for port in (8601, 8602):
            log = (tmp_path / f"streamlit-{port}.log").open("w")
            servers.append(cluster.popen(
                [sys.executable, "-m", "streamlit", "run", str(paths.ROOT / "serve.py"), "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true",
                 "--secrets.files", str(tmp_path / "no-secrets.toml")], env=env, stdout=log, stderr=log))
        script = Path(__file__).with_name("ray_two_servers_in_browser.py")
        driver = cluster.popen([sys.executable, str(script), "http://127.0.0.1:8601", "http://127.0.0.1:8602",
                                lesson.cards[card].title], stdout=subprocess.PIPE, text=True)
        out, _ = driver.communicate(timeout=300)
        result = json.loads(out.strip().splitlines()[-1])
        assert result["ok"], (result, (tmp_path / "streamlit-8602.log").read_text()[-2000:])
        summaries = [json.loads(p.read_text()) for p in runs.glob("*/summary.json")]
        assert [s["status"] for s in summaries] == ["stopped"]  # the one run, stopped from the other server
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)  # our own children, by their process groups
            server.wait(timeout=30)
