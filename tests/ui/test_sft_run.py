"""Lesson 11's supervised fine-tune and its LoRA twin: with no lesson-7 run, both start from the reference model; the
SFT run trains through the run manager, then the page puts held-out questions to the model before and after and
scores the held-out set; the LoRA run's card then sets the two runs side by side."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.post_training.sft import sft_config
from tests.ui.conftest import no_errors, poll_until, texts, widget_app
from ui.widgets import lora_compare, sft_run

SHORT = dict(time_budget=None, max_steps=24, eval_interval=8, eval_every_s=None, sample_every_s=None,
             record_every_s=None, sample_interval=12, eval_batches=2, final_eval_batches=4, threads=1,
             dtype="float32")


@pytest.fixture
def short_runs(monkeypatch):
    """24 steps each instead of a minute: the pages are the subject here, the learning tests/engine's."""
    monkeypatch.setattr(sft_run, "run_config", lambda params: replace(sft_config(60), **SHORT))
    monkeypatch.setattr(lora_compare, "run_config",
                        lambda params, rank: replace(sft_config(60, lora_rank=rank), **SHORT))


def test_sft_then_lora_from_the_reference_model(db, short_runs):
    from ui import run_view
    from ui.session import store

    at = widget_app("sft_run")
    no_errors(at)
    shown = texts(at)
    assert "reference model" in shown and "**1,080** exchanges to train on and **120** held out" in shown
    assert "<|user|>" in at.code[0].value and "<|end|>" in at.code[0].value  # the template, tokens by name
    at.button(key="harness-start").click().run()
    learner = store().last_learner().id
    poll_until(at, lambda a: not run_view.load(learner, "assistant").active, timeout=120)
    no_errors(at)
    run = run_view.load(learner, "assistant")
    assert run.status == "finished" and run.config["sft"] is True
    shown = texts(at)
    assert "Before and after, the same questions" in shown and "Who says:" in shown and "First word:" in shown
    table = at.dataframe[-1].value
    assert list(table["kind of question"]) == ["Who says a line", "The first word of a line",
                                               "A line for a character"]
    assert list(table["held out"]) == [40, 40, 40]

    at = widget_app("lora_compare")
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["LoRA's adapters at rank 4"] == "24,576"  # 3 blocks x 8,192 (tests/engine/post_training)
    at.select_slider(key="harness-rank").set_value(2).run()
    assert {m.label: m.value for m in at.metric}["LoRA's adapters at rank 2"] == "12,288"
    at.button(key="harness-start").click().run()
    poll_until(at, lambda a: not run_view.load(learner, "lora").active, timeout=120)
    no_errors(at)
    tuned = run_view.load(learner, "lora")
    assert tuned.status == "finished" and tuned.config["lora_rank"] == 2
    rows = at.dataframe[-1].value
    assert list(rows["run"]) == ["Full fine-tuning", "LoRA, rank 2"]
    assert rows["trainable parameters"][1] == "20,992 (3.5%)"  # 12,288 in adapters + the 68 x 128 token table
    assert all(rows["steps"] == "24")


def test_a_bpe_lesson7_model_gives_way_to_the_reference_model(db):
    """The special tokens are new characters, so a learner whose lesson-7 run reads BPE tokens fine-tunes the
    reference model instead, and the card says why."""
    from engine.extract.corpus import load_corpus
    from engine.train.config import PRESETS
    from engine.transform.tokenization import train_bpe
    from tests.conftest import wait_until
    from ui import run_view
    from ui.session import store

    at = widget_app("sft_run")
    learner = store().last_learner().id
    text = load_corpus("tinyshakespeare")[:20_000]
    run_view.start(learner, "main", replace(PRESETS["tiny"], max_steps=10), text, label="bpe run",
                   tokenizer=train_bpe(text, 300))
    wait_until(lambda: not run_view.load(learner, "main").active, timeout=120, what="the BPE run")
    at.run()
    no_errors(at)
    shown = texts(at)
    assert "reads BPE tokens" in shown and "the course's reference model" in shown
    assert not at.button(key="harness-start").disabled
