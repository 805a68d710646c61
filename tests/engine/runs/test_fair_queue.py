"""engine.runs.fair_queue and engine.runs.pool_settings: who starts next, what one learner may hold, when a waiting
run starts, and the pool's size on a laptop, a server and a GPU."""

from __future__ import annotations

import pytest

from engine.runs.fair_queue import (
    QueueFull,
    Running,
    Waiting,
    check_admission,
    expected_seconds,
    forecast,
    next_to_start,
)
from engine.runs.pool_settings import PoolSettings, default_settings, from_environment


def test_round_robin_serves_the_learner_who_waited_longest_not_the_first_in_line() -> None:
    queue = [Waiting("a2", "ann", 60), Waiting("a3", "ann", 60), Waiting("b1", "bob", 60), Waiting("c1", "cat", 60)]
    last = {"ann": 10.0, "bob": 5.0}  # bob started a run before ann did; cat never has
    assert next_to_start(queue, [], 1, last).run_id == "c1"
    assert next_to_start(queue[:3], [], 1, last).run_id == "b1"
    # ann already trains one run, the most she may: her waiting runs are passed over, whatever their place
    assert next_to_start(queue[:3], [Running("a1", "ann", 30)], 1, {"ann": 1.0, "bob": 5.0}).run_id == "b1"
    assert next_to_start(queue[:2], [Running("a1", "ann", 30)], 1, {}) is None
    # a script's runs (no owner) are never capped and keep their order
    assert next_to_start([Waiting("s1", "", 9), Waiting("s2", "", 9)], [Running("s0", "", 9)], 1, {}).run_id == "s1"


def test_the_forecast_replays_the_rule_and_nobody_waits_behind_another_learners_second_run() -> None:
    running = [Running("a1", "ann", 20.0)]
    queue = [Waiting("a2", "ann", 25.0), Waiting("b1", "bob", 25.0), Waiting("c1", "cat", 25.0)]
    plan = forecast(queue, running, slots=1, last_start={"ann": 0.0})
    assert plan == {"b1": (1, 20.0), "c1": (2, 45.0), "a2": (3, 70.0)}
    two_slots = forecast(queue, running, slots=2, last_start={"ann": 0.0})
    assert two_slots == {"b1": (1, 0.0), "c1": (2, 20.0), "a2": (3, 25.0)}  # a2 waits for c1's slot, after a1
    assert forecast([], running, 1, {}) == {}


def test_a_learner_holds_one_running_and_one_waiting_request_and_a_batch_counts_once() -> None:
    running = [Running("a1", "ann", 20.0)]
    check_admission("ann", None, [], running, 1, 1)  # one waiting is allowed
    with pytest.raises(QueueFull, match="a run training and one waiting"):
        check_admission("ann", None, [Waiting("a2", "ann", 9)], running, 1, 1)
    batch = [Waiting("a2", "ann", 9, batch="compare"), Waiting("a3", "ann", 9, batch="compare")]
    check_admission("ann", "compare", batch[:1], running, 1, 1)  # the second run of the same request joins it
    with pytest.raises(QueueFull):
        check_admission("ann", "sweep", batch, running, 1, 1)
    check_admission("bob", None, batch, running, 1, 1)  # other learners are not held back by ann's
    check_admission("", None, [Waiting(f"s{i}", "", 9) for i in range(9)], running, 1, 1)  # scripts: no cap
    check_admission("ann", None, [Waiting("a2", "ann", 9)], [], 1, 1)  # nothing running: a second may wait


def test_expected_seconds_is_the_budget_plus_starting_up() -> None:
    assert expected_seconds(20.0) == 25.0 and expected_seconds(None) > 0


def test_the_pool_follows_the_machine_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_settings(cores=1, n_gpus=0) == PoolSettings(slots=1, threads_per_run=1)
    assert default_settings(cores=2, n_gpus=0) == PoolSettings(slots=1, threads_per_run=2)
    assert default_settings(cores=32, n_gpus=0).slots == 16
    gpu = default_settings(cores=16, n_gpus=1)
    assert gpu.slots > 1 and gpu.threads_per_run >= 1  # several small runs share one GPU
    monkeypatch.setenv("LLM_COURSE_RUN_SLOTS", "3")
    monkeypatch.setenv("LLM_COURSE_WAITING_PER_LEARNER", "2")
    moved = from_environment(default_settings(cores=2, n_gpus=0))
    assert (moved.slots, moved.threads_per_run, moved.waiting_per_learner) == (3, 2, 2)
    monkeypatch.setenv("LLM_COURSE_RUN_SLOTS", "many")
    with pytest.raises(ValueError, match="LLM_COURSE_RUN_SLOTS must be a whole number"):
        from_environment(default_settings(cores=2, n_gpus=0))
