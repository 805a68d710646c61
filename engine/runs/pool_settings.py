"""How many runs train at once, how many CPU threads each gets, and how many one learner may hold: the pool's size.

One learner on a laptop wants one run with every core; a class on a server wants several small runs side by side,
and no learner crowding the others out. The defaults follow the machine (`default_settings`); a deployment moves
them with environment variables (`from_environment`, named below and in docs/deploy.md).

    >>> default_settings(cores=2, n_gpus=0)
    PoolSettings(slots=1, threads_per_run=2, running_per_learner=1, waiting_per_learner=1, deadline_margin_s=120.0)
    >>> default_settings(cores=16, n_gpus=0).slots, default_settings(cores=16, n_gpus=2).slots
    (8, 8)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

SLOTS_VAR = "LLM_COURSE_RUN_SLOTS"  # runs training at once on this server
THREADS_VAR = "LLM_COURSE_RUN_THREADS"  # CPU threads each run's torch uses
RUNNING_VAR = "LLM_COURSE_RUNNING_PER_LEARNER"  # runs one learner may have training at once
WAITING_VAR = "LLM_COURSE_WAITING_PER_LEARNER"  # ... and waiting in the queue
MARGIN_VAR = "LLM_COURSE_RUN_DEADLINE_MARGIN_S"  # seconds past its budget before a run is ended for good

THREADS_PER_CPU_RUN = 2  # two threads each: a lesson model's matrices are too small to feed more (docs/training-notes.md)
# Lesson runs one GPU trains side by side before each slows down. A lesson model (0.6M parameters, batches of 2,048
# tokens) keeps a GPU busy for a small share of each step, launching kernels; an estimate until `python -m bench gpu`
# measures it on a lent GPU (docs/benchmarks.md, "GPU packing").
RUNS_PER_GPU = 4
DEADLINE_MARGIN_S = 120.0  # a run's budget plus this, then it is stopped: startup (importing torch) fits, a hang does not
STEP_RUN_LIMIT_S = 1800.0  # a run counted in steps has no time budget: it is ended after this long


@dataclass(frozen=True)
class PoolSettings:
    """The pool's size and its per-learner limits (see the module docstring)."""

    slots: int
    threads_per_run: int
    running_per_learner: int = 1
    waiting_per_learner: int = 1
    deadline_margin_s: float = DEADLINE_MARGIN_S

    def deadline_s(self, time_budget: float | None) -> float:
        """Seconds a run may take from its start before it is stopped (and, if it hangs, ended).

        >>> PoolSettings(1, 2).deadline_s(60.0), PoolSettings(1, 2).deadline_s(None)
        (180.0, 1920.0)
        """
        return (time_budget if time_budget is not None else STEP_RUN_LIMIT_S) + self.deadline_margin_s


def default_settings(cores: int, n_gpus: int) -> PoolSettings:
    """On CPUs: half as many slots as cores, two threads each, at least one slot. On GPUs: RUNS_PER_GPU runs share
    each GPU, and the cores are shared out between them (at least one thread each)."""
    if n_gpus > 0:
        slots = RUNS_PER_GPU * n_gpus
        return PoolSettings(slots=slots, threads_per_run=max(1, cores // slots))
    return PoolSettings(slots=max(1, cores // 2), threads_per_run=min(THREADS_PER_CPU_RUN, max(1, cores)))


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def from_environment(defaults: PoolSettings) -> PoolSettings:
    """`defaults` with every setting its environment variable names replaced (a bad value raises, saying which)."""
    margin = os.environ.get(MARGIN_VAR, "").strip()
    return replace(
        defaults,
        slots=_positive_int(SLOTS_VAR, defaults.slots),
        threads_per_run=_positive_int(THREADS_VAR, defaults.threads_per_run),
        running_per_learner=_positive_int(RUNNING_VAR, defaults.running_per_learner),
        waiting_per_learner=_positive_int(WAITING_VAR, defaults.waiting_per_learner),
        deadline_margin_s=float(margin) if margin else defaults.deadline_margin_s,
    )
