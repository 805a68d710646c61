"""engine.train.schedule: the learning-rate schedule and the planner that fits it to a time budget, on their own."""

from __future__ import annotations

from engine.train.config import TrainConfig
from engine.train.schedule import BudgetPlanner, lr_factor


def _planner(**kw) -> BudgetPlanner:
    args = dict(time_budget=10.0, max_steps=None, start_step=0, eval_interval=100)
    args.update(kw)
    return BudgetPlanner(**args)


def test_without_a_budget_the_plan_is_max_steps_and_never_changes() -> None:
    p = _planner(time_budget=None, max_steps=60)
    for step in range(1, 61):
        p.note_step(step, elapsed=step * 0.1)
        assert not p.due(step)
        assert not p.ran_out_early(step, elapsed=0.1, reserve=0.0)
    assert p.total_steps == 60


def test_plans_at_five_then_doubling_and_at_every_evaluation() -> None:
    p = _planner(eval_interval=30)
    due = []
    for step in range(1, 100):
        p.note_step(step, elapsed=step * 0.01)
        if p.due(step):
            due.append(step)
            p.accept(p.propose(step, elapsed=step * 0.01, reserve=0.0))
    assert due == [5, 10, 20, 30, 40, 60, 80, 90]


def test_proposal_fits_the_time_left_at_the_measured_speed() -> None:
    p = _planner(time_budget=10.0)
    p.note_step(2, elapsed=1.0)  # reference: step 2 at 1 s
    # 4 more steps took 1 s -> 0.25 s a step; 10 - 2 - 0.5 (reserve) = 7.5 s left -> 30 more steps
    assert p.propose(6, elapsed=2.0, reserve=0.5) == 36


def test_proposal_never_exceeds_max_steps() -> None:
    p = _planner(time_budget=100.0, max_steps=50)
    p.note_step(2, elapsed=0.0)
    assert p.propose(5, elapsed=0.03, reserve=0.0) == 50


def test_a_plan_that_ends_with_time_to_spare_is_noticed() -> None:
    p = _planner(time_budget=10.0)
    p.note_step(2, elapsed=0.2)
    p.accept(20)
    assert not p.ran_out_early(19, elapsed=2.0, reserve=0.1)  # the plan has not ended
    assert p.ran_out_early(20, elapsed=2.0, reserve=0.1)  # ended with 8 s of 10 left
    assert not p.ran_out_early(20, elapsed=9.5, reserve=0.1)  # ended on time


def test_a_resumed_run_plans_relative_to_its_start() -> None:
    p = _planner(start_step=400)
    p.note_step(401, elapsed=0.1)
    assert p.ref_step is None  # the first steps after a resume pay one-off costs too
    p.note_step(402, elapsed=0.2)
    assert p.ref_step == 402 and p.due(405) and not p.due(5)


def test_lr_factor_warms_up_then_decays_to_the_floor() -> None:
    c = TrainConfig(warmup_steps=10, min_lr_frac=0.1)
    factors = [lr_factor(s, c, 110) for s in range(110)]
    assert factors[:10] == [(s + 1) / 10 for s in range(10)]
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert abs(lr_factor(110, c, 110) - 0.1) < 1e-9
