"""Lesson 7's Load card: the learner's run opened as the file it is, with the weights' size following from the
parameter count (4 bytes each) and the rest of the file named part by part."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.cost.flops import count_parameters
from engine.number_format import file_size
from engine.train.config import PRESETS
from engine.train.job import run_job
from engine.transform.model import GPTConfig
from paths import DEFAULT_CORPUS
from tests.ui.conftest import no_errors, texts, widget_app


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ckpt") / "run"
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    status, _, _ = run_job(replace(PRESETS["tiny"], max_steps=10), text, None, None, run_dir)
    assert status == "finished"
    return run_dir


def test_without_a_run_it_says_where_to_train(db):
    at = widget_app("checkpoint_file")
    no_errors(at)
    assert "Train your model" in texts(at)


def test_the_learners_run_as_a_file(db, tiny_run):
    from ui.session import store

    learner = store().get_or_create_learner("Ada")
    store().set_fact(learner.id, "run.main", {"run_id": "from-disk", "run_dir": str(tiny_run), "label": "x"})
    at = widget_app("checkpoint_file")
    no_errors(at)
    import json

    params = count_parameters(GPTConfig(**json.loads((tiny_run / "config.json").read_text())["model"])).total
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == f"{params:,}"
    assert metrics["The weights (float32)"] == file_size(4 * params)  # parameters x 4 bytes: a model is its numbers
    assert metrics["The whole file"] == file_size((tiny_run / "ckpt.pt").stat().st_size)
    table = at.dataframe[0].value
    assert list(table["entry"])[0] == "model" and "optimizers" in set(table["entry"])
