"""When a run goes how fast and when it ends: the learning-rate schedule, the planner that fits it to a time budget,
the loop's clock and speed (`Budget`, `Speed`), how often to evaluate, and early stopping.

Warm-up then cosine decay: Loshchilov & Hutter 2017 (SGDR), as in GPT-3 and nanoGPT. A run with a wall-clock
budget does not know how many steps it will get, so `BudgetPlanner` measures the speed of the first steps and
sizes the schedule so the decay reaches its floor just as time runs out, re-planning as it goes (a machine that
gets busier mid-run would otherwise be cut off at full learning rate). Early stopping: Prechelt 1998.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from engine.train.config import TrainConfig
from engine.train.distributed import agree_min
from engine.train.prepare import TrainState


def lr_factor(step: int, config: TrainConfig, total_steps: int | None, start_step: int = 0,
              start_factor: float | None = None) -> float:
    """Fraction of the peak learning rate for the update that produces step `step + 1`.

    Linear warm-up over `warmup_steps` (Adam's early estimates are noisy: small steps until they settle), then a
    half cosine from 1 down to `min_lr_frac` at `total_steps`. `start_step` > 0 when a resumed run plans a
    schedule for its new budget: a fresh one (warm-up and all), or, with `start_factor`, the rest of the one it
    was on: no warm-up (its optimizer state is already settled) and the cosine going on from where the run left
    it, down to the floor at `total_steps`. (Jumping back to the peak would undo part of what the decay gained.)

    >>> c = TrainConfig(warmup_steps=10, min_lr_frac=0.1)
    >>> [round(lr_factor(s, c, 110), 2) for s in (0, 9, 60, 110)]
    [0.1, 1.0, 0.55, 0.1]
    >>> [round(lr_factor(s, c, 200, start_step=100, start_factor=0.55), 2) for s in (100, 150, 200)]
    [0.55, 0.33, 0.1]
    """
    s = step - start_step
    if start_factor is not None:
        if total_steps is None:
            return start_factor
        progress = min(1.0, s / max(1, total_steps - start_step))
        return config.min_lr_frac + (start_factor - config.min_lr_frac) * _cosine(progress)
    if s < config.warmup_steps:
        return (s + 1) / config.warmup_steps
    if total_steps is None:
        return 1.0
    progress = min(1.0, (s - config.warmup_steps) / max(1, total_steps - start_step - config.warmup_steps))
    return config.min_lr_frac + (1.0 - config.min_lr_frac) * _cosine(progress)


def _cosine(progress: float) -> float:
    """A half cosine from 1 (progress 0, just after warm-up) to 0 (the end).

    >>> [round(_cosine(p), 2) for p in (0.0, 0.5, 1.0)]
    [1.0, 0.5, 0.0]
    """
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def resumed_factor(last_lr: float | None, config: TrainConfig) -> float | None:
    """Where a resumed timed run's schedule goes on from: the fraction of the peak rate its last step used, or
    None (a fresh schedule) when it had decayed to the floor already, i.e. it finished and is given more time.

    >>> c = TrainConfig(lr=1e-3, min_lr_frac=0.1)
    >>> resumed_factor(5e-4, c), resumed_factor(1e-4, c), resumed_factor(None, c)
    (0.5, None, None)
    >>> resumed_factor(4e-9, TrainConfig(lr=1e-3, min_lr_frac=0.0))  # the last step of a cosine to zero

    """
    if not last_lr or config.lr <= 0:
        return None
    factor = min(1.0, last_lr / config.lr)
    # at the floor: within 5% of it, or within 1% of the peak above it (a cosine to zero ends just above zero)
    return factor if factor > max(1.05 * config.min_lr_frac, config.min_lr_frac + 0.01) else None


def lr_schedule_points(config: TrainConfig, total_steps: int, n: int = 100) -> list[tuple[int, float]]:
    """Show-me function: (step, learning rate) pairs of the schedule, for the UI to draw."""
    steps = sorted({round(i * (total_steps - 1) / max(1, n - 1)) for i in range(n)})
    return [(s + 1, config.lr * lr_factor(s, config, total_steps)) for s in steps]


@dataclass
class BudgetPlanner:
    """Sizes a timed run's schedule (its total step count) from the speed the run measures as it goes.

    Plans after a few steps, then again at 2x, 4x, ... that many steps and at every evaluation, and whenever the
    plan runs out with more than a tenth of the budget left (a first plan made from slow warm-up steps was too
    short). `due` depends only on the step count, so every rank of a distributed run agrees on it; `ran_out_early`
    reads this process's clock, so a distributed run must agree on it in a collective before acting on it.

    >>> p = BudgetPlanner(time_budget=10.0, max_steps=None, start_step=0, eval_interval=100)
    >>> p.note_step(2, elapsed=0.2); p.due(5)
    True
    >>> p.propose(5, elapsed=0.5, reserve=0.5)   # 0.1 s a step, 9 s left -> 90 more steps
    95
    """

    time_budget: float | None
    max_steps: int | None
    start_step: int = 0
    eval_interval: int = 100
    total_steps: int | None = None  # the current plan (None: no end known yet)
    plan_at: int = 0
    ref_step: int | None = None  # speed is measured from here (the first steps pay one-off costs)
    ref_time: float = 0.0

    def __post_init__(self) -> None:
        self.total_steps = self.max_steps
        self.plan_at = self.start_step + 5

    def note_step(self, step: int, elapsed: float) -> None:
        """Record the step just finished; the second step after the start becomes the speed reference."""
        if self.ref_step is None and step >= self.start_step + 2:
            self.ref_step, self.ref_time = step, elapsed

    def _can_plan(self, step: int) -> bool:
        return bool(self.time_budget) and self.ref_step is not None and step > self.ref_step

    def due(self, step: int) -> bool:
        """A planned re-plan at this step (the same answer on every rank)."""
        return self._can_plan(step) and (step == self.plan_at or step % self.eval_interval == 0)

    def ran_out_early(self, step: int, elapsed: float, reserve: float) -> bool:
        """The plan has ended but more than a tenth of the budget is left (this process's clock)."""
        return (self._can_plan(step) and self.total_steps is not None and step >= self.total_steps
                and elapsed + reserve < 0.9 * (self.time_budget or 0.0))

    def propose(self, step: int, elapsed: float, reserve: float) -> int:
        """The total step count that fits the time left at the speed measured since the reference step.
        `reserve`: seconds to keep for the end-of-run evaluation."""
        if step == self.plan_at:
            self.plan_at = 2 * self.plan_at - self.start_step
        s_per_step = (elapsed - self.ref_time) / max(1, step - (self.ref_step or 0))
        left = (self.time_budget or 0.0) - elapsed - reserve
        planned = step + max(1, int(left / s_per_step)) if s_per_step > 0 else step + 1
        return min(planned, self.max_steps) if self.max_steps is not None else planned

    def accept(self, total_steps: int) -> None:
        self.total_steps = total_steps


class Budget:
    """How long one call of the training loop (engine.train.loop) may train: its wall clock, max_steps or the time
    budget's plan (`BudgetPlanner`), and the learning-rate schedule that plan sizes."""

    def __init__(self, state: TrainState):
        cfg = self.config = state.config
        self.t0, self.start_step = time.perf_counter(), state.step
        self.planner = BudgetPlanner(cfg.time_budget, cfg.max_steps, state.step, cfg.eval_interval)
        # A resumed run with a fresh time budget gets a fresh warm-up + cosine; with max_steps it continues ...
        self.sched_start = state.step if (cfg.time_budget and state.step > 0) else 0
        # ... unless it was stopped part-way: then it goes on down the cosine it was on (`lr_factor`).
        last_lr = state.metrics[-1].get("lr") if self.sched_start and state.metrics else None
        self.start_factor = resumed_factor(last_lr, cfg)
        # the end-of-run evaluation may overrun the budget by 5% + 1 s at most, however busy the machine gets
        self.deadline = self.t0 + 1.05 * cfg.time_budget + 1.0 if cfg.time_budget else None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def lr_factor(self, step: int) -> float:
        return lr_factor(step, self.config, self.planner.total_steps, self.sched_start, self.start_factor)

    def note_step(self, step: int) -> None:
        self.planner.note_step(step, self.elapsed())

    def replan_due(self, step: int) -> bool:
        """A re-plan is planned at this step (the same answer on every rank)."""
        return self.planner.due(step)

    def ran_out_early(self, step: int, reserve: float) -> bool:
        """The plan has ended with over a tenth of the budget left (this process's clock: agree before acting)."""
        return self.planner.ran_out_early(step, self.elapsed(), reserve)

    def done(self, step: int) -> bool:
        """The planned end (max_steps, or the plan for the time budget) is reached."""
        return self.planner.total_steps is not None and step >= self.planner.total_steps

    def over_time(self, reserve: float) -> bool:
        """No time left for another step and the `reserve` the last evaluation needs (this process's clock)."""
        return self.config.time_budget is not None and self.elapsed() + reserve >= self.config.time_budget

    def eval_every(self) -> int:
        return eval_every(self.config.eval_interval, self.planner.total_steps, self.config.eval_points)

    def replan(self, state: TrainState, reserve: float) -> None:
        """Size the schedule to the time left at the measured speed; under torchrun every rank keeps the shortest."""
        planned = self.planner.propose(state.step, self.elapsed(), reserve)
        if state.dist.enabled:
            planned = agree_min(planned, state.device.device)
        self.planner.accept(planned)

    def eta(self, step: int, last: bool = False) -> float | None:
        """Seconds to the end: what is left of the time budget, or the planned steps at the speed so far."""
        if self.config.time_budget is not None:
            return 0.0 if last else max(0.0, self.config.time_budget - self.elapsed())
        if self.planner.total_steps is not None and step > self.start_step:
            return (self.planner.total_steps - step) * self.elapsed() / (step - self.start_step)
        return None


class Speed:
    """Seconds per training step and tokens per second, measured between read-backs (evaluations left out)."""

    def __init__(self, state: TrainState):
        self.tokens_per_step, self.start_step, self.device = state.tokens_per_step, state.step, state.device
        self.since = (time.perf_counter(), state.step)  # clock and step of the last read-back
        self.best_s, self.recent_s = math.inf, 0.0  # best and recent (smoothed) seconds per step
        self.tokens_per_s: float | None = None

    def measure(self, step: int) -> None:
        self.device.synchronize()  # on a GPU the steps queued so far count only once they have run
        dt = (time.perf_counter() - self.since[0]) / max(1, step - self.since[1])
        if step > self.start_step + 1:  # the first step pays one-off costs (allocations, kernel choice)
            self.best_s = min(self.best_s, dt)
            self.recent_s = dt if self.recent_s == 0.0 else 0.8 * self.recent_s + 0.2 * dt
        rate = self.tokens_per_step / dt
        self.tokens_per_s = rate if self.tokens_per_s is None else 0.9 * self.tokens_per_s + 0.1 * rate

    def restart(self, step: int) -> None:
        self.device.synchronize()
        self.since = (time.perf_counter(), step)

    @property
    def slowdown(self) -> float:
        """How much slower training has been lately than at its best (a machine that got busy)."""
        return max(1.0, self.recent_s / self.best_s) if math.isfinite(self.best_s) else 1.0


def eval_every(eval_interval: int, planned_steps: int | None, eval_points: int | None, floor: int = 5) -> int:
    """Steps between validation estimates: the preset's interval, or closer when a short timed run would otherwise
    draw its validation curve from two or three points. `eval_points`: the least number of estimates a run should
    make (None: just the interval); `planned_steps`: the run's planned length (None: not known yet).

    >>> eval_every(50, planned_steps=700, eval_points=16)   # a 60 s run: the interval already gives ~14 points
    43
    >>> eval_every(50, planned_steps=110, eval_points=16)   # a 10 s run: every 6 steps, ~18 points
    6
    >>> eval_every(50, planned_steps=None, eval_points=16), eval_every(50, 110, None), eval_every(50, 30, 16)
    (50, 50, 5)
    """
    if planned_steps is None or not eval_points:
        return eval_interval
    return max(floor, min(eval_interval, planned_steps // eval_points))


@dataclass
class EarlyStopping:
    """The engine's stop rule against memorising: stop when the validation loss has not improved on its best for
    `patience` evaluations in a row (Prechelt 1998, "Early Stopping - But When?"). Patience, rather than the first
    rise, because each evaluation averages only a few batches and its number wobbles.

    >>> rule = EarlyStopping(patience=2)
    >>> [rule.update(step, loss) for step, loss in [(25, 2.6), (50, 2.3), (75, 2.4), (100, 2.35)]]
    [False, False, False, True]
    >>> rule.best_step, rule.best
    (50, 2.3)
    """

    patience: int
    best: float = float("inf")
    best_step: int = 0
    since_best: int = 0  # evaluations since the best one

    def update(self, step: int, val_loss: float) -> bool:
        """Record one evaluation; True when the run should stop now."""
        if val_loss < self.best:
            self.best, self.best_step, self.since_best = val_loss, step, 0
        else:
            self.since_best += 1
        return self.since_best >= self.patience

    def message(self, step: int, every: str) -> str:
        """Why the run stopped; `every`: how often it evaluated, in words ("100 steps", "5 s")."""
        return (f"Stopped early at step {step:,}: the validation loss has not improved for {self.patience} "
                f"evaluations (one every {every}) since its best, {self.best:.3f} at step "
                f"{self.best_step:,}. From there on the model was getting better only at its own training text "
                "(memorising), so the engine's early-stopping rule ended the run.")
