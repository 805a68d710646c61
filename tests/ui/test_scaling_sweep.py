"""Lesson 9's scaling sweep widget: start a ladder (a toy one: seconds, not minutes), watch rungs arrive, get the fit
and the checked prediction; stop a sweep halfway; the sidebar shows a sweep as one line, not one per rung."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from functools import partial

import pytest

from engine.cost import scaling
from engine.train.config import PRESETS
from paths import DEFAULT_CORPUS
from tests.ui.conftest import goto, new_app, no_errors, poll_until, texts, widget_app
from ui.widgets import scaling_sweep

# Four toy sizes (three to fit, one to check), under a second each.
TOY_LADDER = scaling.make_ladder([(1, 1, 8), (1, 2, 16), (2, 2, 32), (2, 2, 48)],
                                 replace(PRESETS["tiny"], sample_interval=0, device="cpu"))
# One that would take long: for stopping it halfway.
SLOW_LADDER = scaling.make_ladder([(1, 1, 8), (1, 1, 16), (1, 1, 32)],
                                  replace(PRESETS["tiny"], max_steps=1_000_000, sample_interval=0, device="cpu"))

_poll_until = partial(poll_until, timeout=90.0)  # a ladder of runs takes longer


@pytest.fixture
def thread_manager(monkeypatch, tmp_path):
    """Runs in threads of this process: the worker processes' start-up (importing torch, a few seconds each on
    a busy machine) would make a four-run sweep slow to test. tests/ui/test_train_run.py covers the processes."""
    from engine.runs import manager as runs

    manager = runs.RunManager(workers="thread", runs_root=tmp_path / "runs")
    monkeypatch.setattr(runs, "_manager", manager)
    yield manager
    for snap in manager.list_runs():
        if snap.status.active:
            manager.stop(snap.run_id)
    for snap in manager.list_runs():
        manager.wait(snap.run_id, timeout=30)


@pytest.fixture
def toy_ladder(monkeypatch, thread_manager):
    monkeypatch.setattr(scaling_sweep, "ladder", lambda: list(TOY_LADDER))


def _table(at) -> str:
    return next((m.value for m in at.markdown if m.value.startswith("| size |")), "")


def _chart_names(at) -> list[str]:
    charts = at.get("plotly_chart")
    return [t.get("name") for t in json.loads(charts[-1].proto.spec)["data"]] if charts else []


def test_before_the_sweep_nothing_is_revealed(db, toy_ladder):
    at = widget_app("scaling_sweep")
    no_errors(at)
    assert "Nothing trained yet" in texts(at)
    assert not at.button(key="harness-start").disabled and at.button(key="harness-stop").disabled
    assert not at.get("plotly_chart")


def test_run_the_sweep_watch_rungs_arrive_and_check_the_prediction(db, toy_ladder):
    at = widget_app("scaling_sweep")
    at.button(key="harness-start").click().run()
    no_errors(at)
    assert at.button(key="harness-start").disabled and not at.button(key="harness-stop").disabled
    assert "waiting in line" in _table(at)  # one trains, the others queue
    at = _poll_until(at, lambda a: "✅ Finished" in _table(a))  # the first size has its loss
    assert "sizes the law is fitted to" in _chart_names(at)
    at = _poll_until(at, lambda a: "Predicted" in texts(a) or "No power law" in texts(a))
    no_errors(at)
    shown = texts(at)
    assert _table(at).count("✅ Finished") == len(TOY_LADDER)
    assert "(the check)" in _table(at)
    if "Predicted" in shown:  # toy sizes usually follow the law; if not, the page says why instead of crashing
        assert "The fitted law:" in shown and "%" in shown
        assert {"fitted power law", "predicted for the next size", "measured: the checking run"} <= set(
            _chart_names(at))
    assert not at.button(key="harness-start").disabled  # ended: it can be run again

    from ui import run_view
    from ui.session import store

    learner = store().last_learner()
    keys = sorted(r.run_key for r in run_view.learner_runs(learner.id))
    assert keys == [f"sweep-{i}" for i in range(len(TOY_LADDER))]  # each rung is a run the learner keeps


def test_stop_ends_every_rung_and_says_the_sweep_is_incomplete(db, monkeypatch, thread_manager):
    monkeypatch.setattr(scaling_sweep, "ladder", lambda: list(SLOW_LADDER))
    at = widget_app("scaling_sweep")
    at.button(key="harness-start").click().run()
    at = _poll_until(at, lambda a: "🟢 training: step" in _table(a))
    at.button(key="harness-stop").click().run()
    at = _poll_until(at, lambda a: not a.button(key="harness-start").disabled)
    no_errors(at)
    assert "Not every size finished" in texts(at)
    assert "⏳" not in _table(at) and "🟢" not in _table(at)


def test_the_sidebar_shows_a_sweep_as_one_line(db, thread_manager):
    from ui import run_view
    from ui.session import store

    at = goto(new_app().run(), "lesson-1")
    learner = store().last_learner()
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    slow = replace(PRESETS["tiny"], max_steps=1_000_000, sample_interval=0)
    for i in range(3):
        assert run_view.start(learner.id, f"sweep-{i}", slow, text, f"rung {i}", batch="sweep-sweep") is not None
    deadline = time.time() + 60
    while not any("Training your scaling sweep: run 1 of 3, step" in c.value for c in at.sidebar.caption):
        assert time.time() < deadline, [c.value for c in at.sidebar.caption]
        time.sleep(0.3)
        at.run()
    assert not at.exception
    assert sum("sweep" in c.value for c in at.sidebar.caption) == 1  # one line, not three (the fixture stops them)


def test_after_a_stop_only_the_missing_sizes_train_again(db, toy_ladder):
    from ui import run_view
    from ui.session import store

    at = widget_app("scaling_sweep")
    at.button(key="harness-start").click().run()
    at = _poll_until(at, lambda a: "✅ Finished" in _table(a))
    at.button(key="harness-stop").click().run()
    at = _poll_until(at, lambda a: not a.button(key="harness-start").disabled)
    learner = store().last_learner()
    before = {r.run_key: r for r in run_view.learner_runs(learner.id)}
    done = {k for k, r in before.items() if r.status == "finished"}
    if len(done) == len(TOY_LADDER):  # the toy sizes are quick: the whole ladder may have finished before Stop
        pytest.skip("every size finished before Stop landed")
    assert "missing" in texts(at)
    at.button(key="harness-missing").click().run()
    at = _poll_until(at, lambda a: _table(a).count("✅ Finished") == len(TOY_LADDER))
    no_errors(at)
    after = {r.run_key: r for r in run_view.learner_runs(learner.id)}
    assert all(after[k].run_id == before[k].run_id for k in done)  # finished sizes were kept, not retrained
    assert all(after[k].run_id != before[k].run_id for k in set(before) - done)
    assert "Not every size finished" not in texts(at)
