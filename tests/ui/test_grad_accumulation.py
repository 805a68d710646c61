"""Gradient accumulation (engine.train.accumulation, ui/widgets/grad_accumulation.py): on the reference model, a batch
accumulated over micro-batches gives the one-pass gradient, forgetting the ÷ k makes it k times longer, the model is
left as it was, and the widget follows its slider."""

from __future__ import annotations

import pytest
import torch

import paths
from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.train.accumulation import accumulate
from engine.transform.data import TextDataset
from tests.ui.conftest import no_errors, texts, widget_app


def _reference_batch(batch: int):
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    model, tok = checkpoint.load_timeline_model(REFERENCE_DIR, step)
    data = TextDataset(paths.DEFAULT_CORPUS.read_text(encoding="utf-8"), tok)
    x, y = data.get_batch("train", batch, 32, torch.Generator().manual_seed(0))  # (B, 32) each: half the context
    return model, x, y


def test_accumulated_micro_batches_give_the_one_pass_gradient_and_leave_the_model_alone() -> None:
    model, x, y = _reference_batch(16)
    before = [p.detach().clone() for p in model.parameters()]
    for micro in (16, 4, 1):
        a = accumulate(model, x, y, micro)
        assert a.passes == 16 // micro and a.tokens == 16 * 32
        assert a.relative_difference < 1e-5 and a.grad_norm > 0
        assert abs(sum(a.micro_losses) / len(a.micro_losses) - a.loss) < 1e-5  # equal-sized parts: the mean of means
        assert a.unscaled_ratio == pytest.approx(a.passes, rel=1e-4)  # forgetting ÷ k: k times as long
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_a_batch_that_does_not_split_evenly_is_refused() -> None:
    model, x, y = _reference_batch(8)
    with pytest.raises(ValueError, match="does not split"):
        accumulate(model, x, y, 3)


def test_the_widget_follows_its_slider(db) -> None:
    at = widget_app("grad_accumulation", {"batch": 16, "micro": 4})
    no_errors(at)
    assert "**4** backward passes of **4**" in texts(at) and "**Forget the ÷ 4**" in texts(at)
    at.select_slider(key="harness-micro").set_value(16).run()
    no_errors(at)
    assert "in **one** backward pass" in texts(at)
