"""The sidebar lists and heartbeats every run the learner has, whatever key a widget started it under."""

from __future__ import annotations

import time
from dataclasses import replace

from engine.train.config import PRESETS
from paths import DEFAULT_CORPUS
from tests.ui.conftest import goto, new_app, texts


def test_a_run_under_a_brand_new_key_is_listed_and_heartbeated(db, monkeypatch):
    """Before the run list came from the progress store, the sidebar knew five hard-coded keys: a run started under
    any other key was never heartbeated and stopped itself five minutes after its learner left the page."""
    from engine.runs.manager import get_manager
    from ui import run_view
    from ui.session import store

    at = goto(new_app().run(), "lesson-1")
    learner = store().last_learner()
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    manager = get_manager()
    beats: list[str] = []
    real_heartbeat = manager.heartbeat
    monkeypatch.setattr(manager, "heartbeat", lambda run_id: (beats.append(run_id), real_heartbeat(run_id)))
    run_id = run_view.start(learner.id, "brand-new", replace(PRESETS["tiny"], max_steps=1_000_000), text, "new")
    try:
        assert [r.run_key for r in run_view.learner_runs(learner.id)] == ["brand-new"]
        deadline = time.time() + 60
        while not any("Training your “brand-new” run: step" in c.value for c in at.sidebar.caption):
            assert time.time() < deadline, texts(at)[-1000:]
            time.sleep(0.3)
            at.run()  # one poll of the sidebar's fragment
        assert not at.exception
        assert run_id in beats  # listing it is what keeps it alive
    finally:
        manager.stop(run_id)
        manager.wait(run_id, timeout=30)
    at.run()
    assert not any("brand-new" in c.value for c in at.sidebar.caption)  # ended: nothing left to poll
