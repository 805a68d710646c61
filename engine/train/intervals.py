"""When the training loop evaluates, draws a text sample and publishes a step's record: every N steps or every N s.

Steps suit tests and the command line (reproducible). Seconds suit runs with a time budget, whose steps take
tens of milliseconds on a laptop's CPU and a few on a GPU: counted in steps, a GPU's minute would evaluate
hundreds of times and write tens of thousands of records, so the page and the run folder would grow with the
device's speed; counted in seconds they stay the same size on any device. A run bounded by max_steps alone counts
in steps even where seconds are set: its size does not depend on the device, and it stays reproducible. A clock is each process's own, so under
torchrun rank 0's clock decides and the loop agrees its answer in the read-back's collective
(engine.train.distributed.agree_step). The clock is therefore asked only at read-back steps, which fall on the
same steps on every rank; what is due by the step count needs no agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.train.config import TrainConfig
from engine.train.schedule import Budget


@dataclass
class Interval:
    """Due every `steps` steps (0: never), or, when `seconds` is set, every `seconds` of the run's clock counted
    from the end of the last one (an evaluation's own time does not shorten the gap to the next)."""

    steps: int = 0
    seconds: float | None = None
    last: float = 0.0  # the clock when it last happened

    @property
    def timed(self) -> bool:
        return self.seconds is not None

    def by_step(self, step: int) -> bool:
        """Due at this step by the step count (the same answer on every rank)."""
        return not self.timed and self.steps > 0 and step % self.steps == 0

    def by_clock(self, now: float) -> bool:
        """Due by this process's clock (under torchrun, rank 0's answer is agreed before anyone acts on it)."""
        return self.seconds is not None and now - self.last >= self.seconds

    def happened(self, now: float) -> None:
        self.last = now


def seconds(every_s: float | None, config: TrainConfig) -> float | None:
    """An interval in seconds where the run has a time budget, else None (it counts in steps)."""
    return every_s if config.time_budget is not None else None


def samples(config: TrainConfig) -> bool:
    """Does the run draw text samples during training (at step 0, its intervals and its end)?"""
    return bool(config.sample_interval) or seconds(config.sample_every_s, config) is not None


def eval_seconds(config: TrainConfig) -> float | None:
    """Seconds between evaluations of a run counted in time: `eval_every_s`, or closer when `eval_points` asks
    for more estimates than that gives within the time budget. None: the run evaluates by the step count.

    >>> eval_seconds(TrainConfig(eval_every_s=5.0, eval_points=16, time_budget=60.0))   # 16 points in 60 s
    3.75
    >>> eval_seconds(TrainConfig(eval_every_s=5.0, time_budget=60.0)), eval_seconds(TrainConfig())
    (5.0, None)
    >>> eval_seconds(TrainConfig(eval_every_s=5.0, time_budget=None, max_steps=100))   # by steps: reproducible

    """
    every = seconds(config.eval_every_s, config)
    if every is not None and config.eval_points and config.time_budget:
        return min(every, config.time_budget / config.eval_points)
    return every


@dataclass
class Due:
    """What a read-back step does besides training (each the same on every rank)."""

    evaluate: bool
    sample: bool
    record: bool


class Intervals:
    """A run's evaluation, sample and record intervals. `budget` gives the clock and, for a run that evaluates
    by the step count, the step interval (engine.train.schedule.eval_every: closer for a short timed run)."""

    def __init__(self, config: TrainConfig, budget: Budget):
        self.budget = budget
        now = budget.elapsed()
        self.eval = Interval(0, eval_seconds(config), now)
        self.sample = Interval(config.sample_interval, seconds(config.sample_every_s, config), now)
        self.record = Interval(1, seconds(config.record_every_s, config), now)  # by steps: every step's record

    def eval_by_step(self, step: int) -> bool:
        return not self.eval.timed and step % self.budget.eval_every() == 0

    def step_due(self, step: int) -> bool:
        """An evaluation or a sample is due by the step count: the loop reads back at this step."""
        return self.eval_by_step(step) or self.sample.by_step(step)

    def clock(self) -> list[bool]:
        """What this process's clock says is due (evaluate, sample, record): for rank 0 to propose."""
        now = self.budget.elapsed()
        return [self.eval.by_clock(now), self.sample.by_clock(now), self.record.by_clock(now)]

    def decide(self, step: int, clock: list[bool]) -> Due:
        """What is due at this read-back step, from the step count and the agreed `clock`."""
        return Due(evaluate=self.eval_by_step(step) or clock[0], sample=self.sample.by_step(step) or clock[1],
                   record=self.record.by_step(step) or clock[2])

    def keeps_every_record(self) -> bool:
        """Every step's record is published (records are not counted in time)."""
        return not self.record.timed

    def every(self) -> str:
        """The evaluation interval in words, for the early-stopping message: "100 steps" or "5 s"."""
        seconds = self.eval.seconds
        return f"{seconds:g} s" if seconds is not None else f"{self.budget.eval_every():,} steps"
