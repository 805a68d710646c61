"""ui.model_source: the reference model is always there; the learner's own run comes first once it has ended."""

from __future__ import annotations

from dataclasses import replace

from engine.load.reference import REFERENCE_DIR
from engine.train.config import PRESETS
from engine.train.job import run_job
from paths import DEFAULT_CORPUS


def test_reference_first_then_own_run_first(db, tmp_path):
    from ui import model_source
    from ui.session import store

    learner = store().get_or_create_learner("Ada")
    only = model_source.sources(learner.id)
    assert [s.own for s in only] == [False] and only[0].run_dir == str(REFERENCE_DIR)
    model, tok = model_source.load_model(only[0])
    assert model.config.vocab_size == tok.vocab_size

    run_dir = tmp_path / "run"
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    run_job(replace(PRESETS["tiny"], max_steps=20), text, None, None, run_dir)
    store().set_fact(learner.id, "run.main", {"run_id": "gone-after-restart", "run_dir": str(run_dir), "label": "x"})
    both = model_source.sources(learner.id)
    assert [s.own for s in both] == [True, False] and "20 steps" in both[0].label
    model, _ = model_source.load_model(both[0], step=0)
    assert model.config.n_layer == PRESETS["tiny"].model.n_layer
