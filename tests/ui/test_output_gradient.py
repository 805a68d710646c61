"""Lesson 7's output gradient, p − y (engine.look_inside.output_gradient and ui/widgets/output_gradient.py): the
formula against torch autograd on the reference model, its signs, the batch view's push and pull (and autograd on the
tied table), the charts' accessibility, and the widget reacting to its prompt, target, step and batch in AppTest."""

from __future__ import annotations

import json
from functools import lru_cache

import pytest
import torch

import paths
from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside.output_gradient import (
    autograd_logit_gradient,
    batch_push,
    mean_pairwise_cosine,
    output_gradient,
    p_minus_y,
)
from tests.ui.conftest import no_errors, texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, colours, contrast
from ui.widgets import output_gradient as widget

PROMPT = "ROMEO: What light through yonder"
SHAKESPEARE = paths.DEFAULT_CORPUS.read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def _reference(first: bool = False):
    steps = checkpoint.list_timeline(REFERENCE_DIR)
    return checkpoint.load_timeline_model(REFERENCE_DIR, steps[0 if first else -1]["step"])


@lru_cache(maxsize=2)
def _batch(first: bool = False):
    model, tok = _reference(first)
    return batch_push(model, tok, SHAKESPEARE, batch_size=8, seed=0)


def test_p_minus_y_by_hand_and_by_autograd():
    """Scores (ln 1, ln 2, ln 1): p = (1/4, 1/2, 1/4); with token 1 next, p − y = (1/4, −1/2, 1/4)."""
    logits = torch.log(torch.tensor([1.0, 2.0, 1.0]))
    p, y, grad = p_minus_y(logits, 1)
    assert torch.allclose(p, torch.tensor([0.25, 0.5, 0.25])) and y.tolist() == [0.0, 1.0, 0.0]
    assert torch.allclose(grad, torch.tensor([0.25, -0.5, 0.25]))
    assert torch.allclose(autograd_logit_gradient(logits, 1), grad, atol=1e-7)


def test_formula_equals_autograd_on_the_reference_model():
    model, tok = _reference()
    space = tok.encode(" ")[0]
    view = output_gradient(model, tok, PROMPT, space)
    assert view.autograd_max_diff < 1e-6
    assert abs(view.total) < 1e-6  # p − y sums to 0 over the vocabulary
    assert view.vocab_size == tok.vocab_size and len(view.rows) == 10
    assert view.target.id == space and view.target.y == 1.0 and view.context.endswith("yonder")
    assert view.target.grad == pytest.approx(view.target.p - 1) and view.target.grad < 0
    assert view.loss == pytest.approx(-torch.log(torch.tensor(view.target.p)).item(), abs=1e-6)
    others = [r for r in view.rows if r.id != space]
    assert all(r.y == 0 and r.grad >= 0 and r.grad == pytest.approx(r.p) for r in others)
    sizes = [abs(r.grad) for r in view.rows]
    assert sizes == sorted(sizes, reverse=True)
    assert view.best.p >= max(r.p for r in view.rows)


def test_an_unlikely_target_is_still_in_the_rows_and_pulled_hardest():
    model, tok = _reference()
    z = tok.encode("Z")[0]
    view = output_gradient(model, tok, PROMPT, z)
    assert view.rows[0].id == z and view.rows[0].grad < -0.9  # the model barely bet on "Z": almost a full pull
    assert view.autograd_max_diff < 1e-6 and view.loss > 3
    with pytest.raises(ValueError):
        output_gradient(model, tok, PROMPT, tok.vocab_size)


def test_a_long_prompt_keeps_its_last_block():
    model, tok = _reference()
    view = output_gradient(model, tok, "a" * 70 + "b", 0)
    assert view.dropped == 71 - model.config.block_size and view.context.endswith("b")


def test_batch_push_and_pull_add_up_to_the_batch():
    model, tok = _reference()
    batch = _batch()
    n = batch.batch_size * batch.block_size
    assert (batch.batch_size, batch.block_size) == (8, model.config.block_size)
    assert len(batch.tokens) == tok.vocab_size and sum(t.count for t in batch.tokens) == n
    assert sum(t.read for t in batch.tokens) == n
    # Σ p over every token and position is n, and Σ y is n: pushes minus pulls cancel over the vocabulary
    assert sum(t.net for t in batch.tokens) == pytest.approx(0, abs=1e-3)
    counts = [t.count for t in batch.tokens]
    assert counts == sorted(counts, reverse=True)
    for t in batch.tokens:
        assert t.push >= 0 and t.pull >= 0
        if t.count == 0:  # never the target: pushes only, so its total p − y is positive
            assert t.pull == 0 and t.net >= 0 and t.id in batch.never_next
        else:
            assert t.pull > 0 and t.id not in batch.never_next
    assert batch.never_next and set(batch.untouched) <= set(batch.never_next)
    assert batch.frequent == [t.id for t in batch.tokens[:10]]


def test_batch_is_the_trainers_seeded_batch():
    model, tok = _reference()
    again = batch_push(model, tok, SHAKESPEARE, batch_size=8, seed=0)
    assert again.tokens == _batch().tokens and again.loss == _batch().loss
    other = batch_push(model, tok, SHAKESPEARE, batch_size=8, seed=1)
    assert [t.count for t in other.tokens] != [t.count for t in _batch().tokens]


def test_the_tied_tables_gradient_for_untouched_rows_is_the_push():
    """Autograd of the model's own batch loss for the rows neither read nor predicted equals Σ p h / N."""
    batch = _batch()
    assert batch.untouched and batch.autograd_max_diff is not None and batch.autograd_max_diff < 1e-6
    model, _ = _reference()
    assert all(p.grad is None for p in model.parameters())  # the shared model is left as it was


def test_untrained_model_pushes_every_rare_row_the_same_way():
    """At step 0 the model spreads p evenly, so every never-next row's gradient is nearly the same vector."""
    first = _batch(first=True)
    assert first.cos_never_next is not None and first.cos_never_next > 0.95
    assert first.cos_frequent is not None and first.cos_frequent < first.cos_never_next
    trained = _batch()
    assert trained.cos_never_next is not None and trained.cos_never_next < first.cos_never_next


def test_mean_pairwise_cosine():
    assert mean_pairwise_cosine(torch.ones(1, 3)) is None
    assert mean_pairwise_cosine(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0)
    assert mean_pairwise_cosine(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])) == pytest.approx(1.0)


def test_charts_read_in_both_themes_and_have_text_versions():
    model, tok = _reference()
    view = output_gradient(model, tok, PROMPT, tok.encode(" ")[0])
    batch = _batch()
    for fig in (widget.prediction_chart(view), widget.batch_chart(batch)):
        spec = fig.to_plotly_json()
        for name in ("xaxis", "yaxis"):
            assert spec["layout"][name]["title"]["text"], name
        spec["layout"].pop("template", None)
        for where, colour in colours(spec):
            assert "textfont" not in where
            for background in BACKGROUNDS.values():
                assert contrast(colour, background) >= NON_TEXT_CONTRAST, (where, colour)
    pred = widget.prediction_chart(view)
    assert list(pred.layout.xaxis.ticktext).count("<b>␣ (next)</b>") == 1
    words = widget.prediction_text(view)
    assert words.startswith("Chart as text, p then p − y: ␣ (came next) ") and words.count("(came next)") == 1
    assert all(f"{r.grad:+.3f}" in words for r in view.rows)
    chart = widget.batch_chart(batch)
    assert list(chart.layout.xaxis.ticktext) == [t.text for t in batch.tokens]
    never_pull = [chart.data[1].y[i] for i, t in enumerate(batch.tokens) if t.count == 0]
    assert never_pull and all(v is None for v in never_pull)  # no pull bar where it never came next
    words = widget.batch_text(batch)
    assert all(f"{t.push:.3f}" in words for t in batch.tokens)


def test_widget_shows_the_gradient_and_reacts(db):
    at = widget_app("output_gradient", {"prompt": "ROMEO: What light through yonder", "target": " "})
    no_errors(at)
    shown = texts(at)
    assert "the character that came next" in shown and "autograd" in shown
    assert "never came next" in shown and "cosine similarity" in shown and "Slide the model back" in shown
    assert at.selectbox(key="harness-target-ref").value == 1  # " " is id 1 in Tiny Shakespeare's vocabulary
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    ticks = json.loads(charts[0].proto.spec)["layout"]["xaxis"]["ticktext"]
    assert "<b>␣ (next)</b>" in ticks

    at.text_input(key="harness-prompt").set_value("To be, or not to b").run()
    at.selectbox(key="harness-target-ref").set_value(43).run()  # id 43 is "e" in Tiny Shakespeare's vocabulary
    no_errors(at)
    assert "After “…␣or␣not␣to␣b” the model gave **e**" in texts(at)
    ticks = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]["ticktext"]
    assert "<b>e (next)</b>" in ticks

    before = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]["y"]
    at.button(key="harness-another").click().run()
    no_errors(at)
    assert json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]["y"] != before

    at.select_slider(key="harness-step-ref").set_value(0).run()
    no_errors(at)
    assert "never came next" in texts(at) and "Slide the model back" not in texts(at)


def test_widget_says_when_the_prompt_is_empty(db):
    at = widget_app("output_gradient", {"prompt": "Q", "target": "u"})
    no_errors(at)
    at.text_input(key="harness-prompt").set_value("").run()
    no_errors(at)
    assert "Type a prompt" in texts(at)
    at.text_input(key="harness-prompt").set_value("café").run()  # "é" is not in Tiny Shakespeare's 65 characters
    no_errors(at)
    assert "cannot read that prompt" in texts(at)
    at.text_input(key="harness-prompt").set_value("x" * 80).run()
    no_errors(at)
    assert "first 16 of your prompt were cut" in texts(at)
