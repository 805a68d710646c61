"""Who trains next: round robin across learners, a cap on what one learner holds, and when each waiting run starts.

A class shares a few slots. First come, first served would let one learner's sweep of five runs hold everyone
else back, so the next run to start belongs to the learner who started one longest ago (ties: who asked first),
and a learner may hold at most `running_per_learner` runs training and `waiting_per_learner` requests waiting.
Runs submitted together as one request (a batch: the two runs of a side-by-side comparison, a sweep's rungs) count
as one waiting request. A run with no owner (a script, a benchmark) is never capped.

These are pure functions of the queue's state, so the run manager, the page's "starts in about ..." and a test all
read the same answer:

    >>> q = [Waiting("b1", "bob", 60.0), Waiting("a2", "ann", 60.0)]
    >>> next_to_start(q, [Running("a1", "ann", 30.0)], running_per_learner=1, last_start={"ann": 5.0}).run_id
    'b1'
    >>> forecast(q, [Running("a1", "ann", 30.0)], slots=2, last_start={"ann": 5.0})
    {'b1': (1, 0.0), 'a2': (2, 30.0)}
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# How long a run counted in steps (no time budget) is expected to take, for the estimate only.
STEP_RUN_GUESS_S = 60.0


class QueueFull(ValueError):
    """A learner asked for more runs than they may hold; the message says what to do."""


@dataclass(frozen=True)
class Waiting:
    run_id: str
    owner: str  # "" for a run nobody owns (never capped)
    expected_s: float  # how long it trains once started
    batch: str | None = None  # runs of one request share it


@dataclass(frozen=True)
class Running:
    run_id: str
    owner: str
    remaining_s: float  # how long until it ends, as best known


def check_admission(owner: str, batch: str | None, queued: Sequence[Waiting], running: Sequence[Running],
                    running_per_learner: int, waiting_per_learner: int) -> None:
    """Raise QueueFull if `owner` may not queue another request now. A request joins a batch already waiting freely."""
    if not owner:
        return
    requests = {w.batch or f"run:{w.run_id}" for w in queued if w.owner == owner}
    if batch is not None and batch in requests:
        return
    busy = sum(1 for r in running if r.owner == owner)
    if len(requests) >= waiting_per_learner and busy >= running_per_learner:
        training = "a run training" if busy == 1 else f"{busy} runs training"
        waiting = "one waiting" if len(requests) == 1 else f"{len(requests)} waiting"
        raise QueueFull(f"You already have {training} and {waiting} to start, the most one learner may hold while "
                        "the class shares this server. Wait for one to finish, or stop one, then try again.")


def _rr_key(w: Waiting, index: int, last_start: Mapping[str, float]) -> tuple[float, int]:
    return (last_start.get(w.owner, float("-inf")), index)


def next_to_start(queued: Sequence[Waiting], running: Sequence[Running], running_per_learner: int,
                  last_start: Mapping[str, float]) -> Waiting | None:
    """The run a free slot takes now: of the runs whose owner may start another, the one whose owner last started
    a run longest ago (never: first), ties by the order they were asked for. None if nobody may start."""
    busy: dict[str, int] = {}
    for r in running:
        busy[r.owner] = busy.get(r.owner, 0) + 1
    eligible = [(i, w) for i, w in enumerate(queued) if not w.owner or busy.get(w.owner, 0) < running_per_learner]
    if not eligible:
        return None
    return min(eligible, key=lambda iw: _rr_key(iw[1], iw[0], last_start))[1]


def _start_at(w: Waiting, t: float, owner_ends: Mapping[str, list[float]], running_per_learner: int) -> float:
    """The earliest a free slot at `t` can start `w`: later if its owner still has as many runs as allowed."""
    ends = sorted(e for e in owner_ends.get(w.owner, []) if e > t)
    if w.owner and len(ends) >= running_per_learner:
        return max(t, ends[len(ends) - running_per_learner])
    return t


def forecast(queued: Sequence[Waiting], running: Sequence[Running], slots: int, last_start: Mapping[str, float],
             running_per_learner: int = 1) -> dict[str, tuple[int, float]]:
    """Each waiting run's place in line (1 = next) and the seconds until it starts, replaying the dispatch rule
    over the expected durations. An estimate: runs end early when stopped, and late ones are cut at their deadline."""
    slot_free = sorted(r.remaining_s for r in running)[:slots] + [0.0] * max(0, slots - len(running))
    heapq.heapify(slot_free)
    owner_ends: dict[str, list[float]] = {}
    for r in running:
        heapq.heappush(owner_ends.setdefault(r.owner, []), r.remaining_s)
    last = dict(last_start)
    pending = list(enumerate(queued))
    out: dict[str, tuple[int, float]] = {}
    while pending and slot_free:
        t = heapq.heappop(slot_free)

        index, chosen = min(pending, key=lambda iw: (_start_at(iw[1], t, owner_ends, running_per_learner),
                                                     *_rr_key(iw[1], iw[0], last)))
        start = _start_at(chosen, t, owner_ends, running_per_learner)
        pending.remove((index, chosen))
        out[chosen.run_id] = (len(out) + 1, start)
        end = start + chosen.expected_s
        heapq.heappush(slot_free, end)
        ends = [e for e in owner_ends.get(chosen.owner, []) if e > start] + [end]
        owner_ends[chosen.owner] = ends
        last[chosen.owner] = start
    return out


def expected_seconds(time_budget: float | None, startup_s: float = 5.0) -> float:
    """How long a run is expected to hold its slot: its budget plus starting up (a step-counted run: a guess)."""
    return (time_budget if time_budget is not None else STEP_RUN_GUESS_S) + startup_s
