"""Lesson 10's fine-tuning run: from the learner's own lesson-7 run (a real tiny one) onto the bundled Python, with
both validation curves, the samples before and after and the replaced characters; without a run of their own,
from the reference model."""

from __future__ import annotations

import json
import time

import pytest

from engine.train.config import PRESETS
from engine.train.finetune import finetune_config, fit_text
from engine.transform.tokenization import CharTokenizer
from tests.ui.conftest import no_errors, texts, widget_app
from ui.widgets import finetune_run


def _wait(done, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not done():
        assert time.time() < deadline, "timed out"
        time.sleep(0.3)


@pytest.fixture
def tiny_finetune(monkeypatch):
    """The fine-tune trains the tiny preset's 60 steps (measured every 20), not the lesson's 30 s."""
    monkeypatch.setattr(finetune_run, "run_config", lambda params, source: finetune_config(PRESETS["tiny"]))


def test_finetune_the_learners_own_run(db, tiny_finetune):
    from engine.extract.corpus import load_corpus
    from ui import run_view
    from ui.session import store

    at = widget_app("finetune_run")
    no_errors(at)
    learner = store().last_learner().id
    shakespeare, code = load_corpus("tinyshakespeare"), load_corpus("python_stdlib")
    run_view.start(learner, "main", PRESETS["tiny"], shakespeare, label="lesson run")  # the learner's lesson-7 run
    _wait(lambda: not run_view.load(learner, "main").active)
    assert run_view.load(learner, "main").status == "finished"

    at.run()
    no_errors(at)
    shown = texts(at)
    assert "your own model" in shown and "reference model" not in shown
    expected = fit_text(code, CharTokenizer.from_text(shakespeare))
    assert expected.replaced > 0
    assert f"**{expected.replaced:,}** of the **{expected.total:,}** characters" in shown
    assert "`_` ×6," in shown  # the most common missing character, in a code span so Markdown shows it as it is

    at.button(key="harness-start").click().run()
    no_errors(at)
    assert at.button(key="harness-start").disabled  # one run at a time
    deadline = time.time() + 90
    while run_view.load(learner, "finetune").active and time.time() < deadline:
        time.sleep(0.5)
        at.run()  # a poll: run_every does not fire inside AppTest
    at.run()
    no_errors(at)
    run = run_view.load(learner, "finetune")
    assert run.status == "finished" and run.finetune["from"] == run_view.load(learner, "main").run_dir
    assert run.finetune["replaced_chars"] == expected.replaced

    spec = json.loads(at.get("echarts_chart")[-1].proto.spec)
    curves = {s["name"]: s["data"] for s in spec["series"]}
    new, old = curves["new text: Python standard library (code)"], curves["learned first: Tiny Shakespeare"]
    assert len(new) >= 3 and len(old) >= 3 and new[0][0] == 0 and old[0][0] == 0
    assert new[-1][1] < new[0][1]  # the new text's loss fell

    shown = texts(at)
    assert "Before: step 0" in shown and f"After: step {run.step}" in shown
    samples = [c for c in at.code if c.language != "python"]  # not the engine code under the demo (ui/code_view)
    assert len(samples) == 2 and samples[0].value != samples[1].value
    assert f"from **{new[0][1]:.3f}**" in shown  # the sentence states the run's own start and end losses
    assert f"{expected.replaced:,} characters of the new text became `?`" in shown
    assert not at.button(key="harness-start").disabled


def test_without_a_run_of_their_own_it_starts_from_the_reference_model(db):
    at = widget_app("finetune_run")
    no_errors(at)
    shown = texts(at)
    assert "no trained model from lesson 7" in shown and "reference model" in shown
    assert "Nothing fine-tuned yet" in shown
    assert not at.button(key="harness-start").disabled
