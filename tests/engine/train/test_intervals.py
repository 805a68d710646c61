"""engine.train.intervals: a timed run evaluates, samples and records by the clock, so how many of each it makes
does not grow with the device's speed; a run bounded by steps counts in steps."""

from __future__ import annotations

from dataclasses import replace

from engine.train.config import PRESETS
from engine.train.intervals import Interval
from engine.train.loop import train_loop
from engine.train.prepare import prepare

TINY = PRESETS["tiny"]
TIMED = replace(TINY, max_steps=None, time_budget=2.0, eval_every_s=0.5, sample_every_s=0.8, record_every_s=0.1)


def run(config, text: str) -> tuple[int, list[dict]]:
    state = prepare(config, text)
    records: list[dict] = []
    train_loop(state, on_record=records.append)
    return state.step, records


def test_an_interval_counts_steps_or_seconds() -> None:
    by_steps, by_clock = Interval(steps=20), Interval(steps=20, seconds=1.5, last=10.0)
    assert [by_steps.by_step(s) for s in (19, 20, 40)] == [False, True, True] and not by_steps.by_clock(99.0)
    assert not by_clock.by_step(20) and not by_clock.by_clock(11.4) and by_clock.by_clock(11.5)
    by_clock.happened(12.0)
    assert not by_clock.by_clock(13.0)
    assert not Interval(steps=0).by_step(0)  # 0: never


def test_a_timed_run_evaluates_samples_and_records_by_the_clock(small_text: str) -> None:
    steps, records = run(TIMED, small_text)
    evaluated = [r for r in records if r["val_loss"] is not None]
    sampled = [r for r in records if "sample" in r]
    # between the first and the last: at least the interval apart, so at most budget / interval of them
    gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(evaluated[:-1], evaluated[1:-1], strict=False)]
    assert all(gap >= 0.5 for gap in gaps[1:]) and len(evaluated) <= 2 + 2.0 / 0.5
    assert len(sampled) <= 2 + 2.0 / 0.8 and sampled[0]["step"] == 0 and "sample" in records[-1]
    # one record per 0.1 s, besides the evaluations and samples: however many steps the device made
    assert len(records) <= 2.0 / 0.1 + len(evaluated) + len(sampled) + 2
    assert len(records) < steps and records[-1]["step"] == steps and records[-1].get("final")


def test_a_run_bounded_by_steps_counts_in_steps_even_with_seconds_set(small_text: str) -> None:
    config = replace(TIMED, max_steps=30, time_budget=None, eval_interval=10, sample_interval=15)
    steps, records = run(config, small_text)
    assert steps == 30 and [r["step"] for r in records] == list(range(31))
    assert [r["step"] for r in records if r["val_loss"] is not None] == [0, 10, 20, 30]
    assert [r["step"] for r in records if "sample" in r] == [0, 15, 30]


def test_the_lesson_preset_counts_in_seconds() -> None:
    lesson = PRESETS["lesson"]
    assert lesson.time_budget and lesson.eval_every_s and lesson.sample_every_s and lesson.record_every_s
    assert TINY.eval_every_s is None and TINY.sample_every_s is None and TINY.record_every_s is None
