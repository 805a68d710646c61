"""bench.class_sim: a tiny class through a run manager gives every figure, and no first run waits behind a second.

Tiny runs (the tiny preset, 1 s budgets, trained in threads so no process pays torch's import) prove the simulation's plumbing and the fair queue's
promise; the real figures come from `python -m bench class` (docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path

from bench import class_sim, classroom
from engine.runs.manager import RunManager
from engine.runs.pool_settings import PoolSettings
from engine.train.config import PRESETS
from paths import DEFAULT_CORPUS


def test_a_tiny_class(tmp_path: Path) -> None:
    manager = RunManager(runs_root=tmp_path, workers="thread", n_gpus=0,
                         settings=PoolSettings(slots=2, threads_per_run=1))
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:100_000]
    base = PRESETS["tiny"]
    with class_sim.PeakRss(class_sim.own_pid) as server:
        f = class_sim.simulate(manager, text, learners=4, seconds=1.0, spread_s=0.2, second_every=2, timeout_s=60,
                               base=base)
    assert (f["runs"], f["first_runs"], f["second_runs"]) == (6, 4, 2)
    assert f["finished"] == 6 and f["not_finished"] == []
    assert f["unfair"] is None
    assert 0 <= f["wait_p50_s"] <= f["wait_p95_s"] <= f["wait_max_s"] < f["total_s"]
    assert f["median_steps"] > 0 and f["median_val_loss"] is not None
    assert manager.peak_running == 2
    assert server.peak_mib > 0
    rows = dict(classroom.rows_for("local, 2 slots", {**f, "server_mib": server.peak_mib, "training_mib": 0.0}))
    assert rows["local, 2 slots: every first run started before any other learner's second run"] == "yes"


def test_fairness_names_a_first_run_that_waited_behind_a_second() -> None:
    def run(owner: str, nth: int, created: float, started: float) -> dict:
        return {"owner": owner, "nth": nth, "created_at": created, "started_at": started}

    fair = [run("a", 1, 0.0, 0.0), run("b", 1, 0.1, 5.0), run("a", 2, 0.2, 6.0)]
    assert class_sim.fairness(fair) is None
    unfair = [run("a", 1, 0.0, 0.0), run("a", 2, 0.2, 5.0), run("b", 1, 0.1, 6.0)]
    assert "b's first run started 1.0 s after a's second run" in class_sim.fairness(unfair)
    late = [run("a", 1, 0.0, 0.0), run("a", 2, 0.2, 5.0), run("b", 1, 5.5, 6.0)]  # b asked after a's 2nd started
    assert class_sim.fairness(late) is None
