"""Lesson 9's training-memory widget: the per-parameter accounting (engine.cost.memory), the measured state of a real
step against it, fp16 underflow and loss scaling and bf16 rounding (engine.cost.mixed_precision), its colours in
both themes, and the widget in AppTest."""

from __future__ import annotations

import functools

import pytest
import torch

import paths
from engine.cost.memory import (
    STATE_BYTES,
    chips_to_hold,
    measure_step,
    published_memory,
    run_batch,
    run_settings,
    training_memory,
)
from engine.cost.mixed_precision import float_format, rounding_away, spacing, underflow
from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.train.config import PRESETS
from engine.transform.model import GPT
from engine.transform.tokenization import CharTokenizer
from tests.ui.conftest import no_errors, texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, contrast
from ui.widgets import training_memory as widget


def test_mixed_precision_adam_holds_16_bytes_per_parameter():
    """The ZeRO paper's 2 + 2 + 12: 16-bit weights and gradients, float32 master weights and Adam's two moments."""
    mixed = training_memory({"adamw": 1_000_000}, "mixed")
    assert [p.per_param for p in mixed.parts] == [2, 2, 4, 8] and mixed.state_per_param == 16
    assert mixed.state_bytes == 16_000_000 == mixed.total_bytes
    plain = training_memory({"adamw": 1_000_000}, "float32")  # 4 + 4 + 8: the same total, split otherwise
    assert [p.per_param for p in plain.parts] == [4, 4, 8] and plain.state_bytes == mixed.state_bytes
    with_act = training_memory({"adamw": 10}, "mixed", activations_bytes=500)
    assert with_act.total_bytes == 160 + 500 and with_act.state_bytes == 160
    assert training_memory({"muon": 10}, "float32").state_per_param == 12  # one momentum buffer: 4 + 4 + 4
    with pytest.raises(ValueError):
        training_memory({"adamw": 10}, "fp8")
    llama = published_memory("llama3_8b")
    assert llama.mixed.state_bytes == 16 * 8e9
    fits = {c.id: c.chips for c in llama.chips}
    assert fits["h100_sxm"] == 2 and fits["h200"] == 1 and fits["a100_40gb"] == 4
    assert chips_to_hold(80e9, 80) == 1 and chips_to_hold(80e9 + 1, 80) == 2


def test_measured_state_of_a_real_step_equals_the_formula_for_its_optimizer_mix():
    config = PRESETS["tiny"].with_changes(optimizer="muon", batch_size=4)
    tok = CharTokenizer.from_text("abcdefgh ")
    torch.manual_seed(0)
    model = GPT(config.model_config(tok.vocab_size))
    before = [p.detach().clone() for p in model.parameters()]
    x, y = run_batch(tok, "abc defgh hgf edcba " * 20, config.batch_size, config.model.block_size)
    m = measure_step(model, config, x, y, "float32")
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))  # a copy took the step
    n = sum(p.numel() for p in model.parameters())
    hidden = sum(p.numel() for name, p in model.named_parameters() if name.startswith("transformer.h.") and p.dim() == 2)
    assert m.parameters == n and m.params_by_optimizer == {"adamw": n - hidden, "muon": hidden}
    assert m.weights == m.gradients == 4 * n
    assert m.optimizer["muon"] == STATE_BYTES["muon"] * hidden
    formula = {p.name: p.bytes for p in m.formula.parts}
    assert m.optimizer["adamw"] == formula["AdamW momentum and variance"] == 8 * (n - hidden) + 4 * m.adamw_tensors
    assert m.optimizer["muon"] == formula["Muon momentum"]
    act = m.activations["float32"]
    assert len(act.per_layer) == config.model.n_layer and all(b > 0 for b in act.per_layer)
    assert act.weight_copies == 0 and m.activations["bfloat16"].weight_copies > 0  # autocast's bf16 weight copies
    assert "**" in widget.own_summary(m) and len(widget.own_table(m)) == 5


def test_fp16_underflow_is_counted_and_loss_scaling_lifts_it():
    g = torch.tensor([1e-9] * 3 + [1e-6] * 5 + [1e-2] * 2 + [0.0])  # below fp16's floor, subnormal, normal, zero
    plain = underflow(g)
    assert (plain.nonzero, plain.fp16_zero, plain.fp16_subnormal, plain.fp16_overflow) == (10, 3, 5, 0)
    assert plain.bf16_zero == 0  # bf16 has float32's range
    scaled = underflow(g, 16)  # x 65,536: 1e-9 -> 6.6e-5, above fp16's smallest normal (6.1e-5)
    assert (scaled.fp16_zero, scaled.fp16_subnormal, scaled.fp16_overflow) == (0, 0, 0)
    too_far = underflow(g, 24)  # 1e-2 x 2^24 = 167,772 > fp16's largest, 65,504
    assert too_far.fp16_overflow == 2 and too_far.bf16_overflow == 0
    f16, bf16 = float_format("float16"), float_format("bfloat16")
    assert (f16.exponent_bits, f16.mantissa_bits, bf16.exponent_bits, bf16.mantissa_bits) == (5, 10, 8, 7)
    assert bf16.smallest_normal == float_format("float32").smallest_normal


def test_a_small_update_rounds_away_in_bf16_but_not_in_float32():
    w = torch.tensor([1.0, 0.25, 1.0])
    d = torch.tensor([-1e-3, -1e-3, -0.02])  # bf16's gap near 1 is 2^-7 = 0.0078: 1e-3 is under half of it
    assert spacing(1.0, "bfloat16") == 2 ** -7
    assert rounding_away(w, d, "bfloat16") == 1  # near 0.25 the gap is 4x smaller: that update survives
    assert rounding_away(w, d, "float32") == 0 and rounding_away(w, torch.zeros(3), "bfloat16") == 0


@functools.cache
def _reference_step():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    model, tok = checkpoint.load_timeline_model(REFERENCE_DIR, step)
    settings = run_settings(REFERENCE_DIR)
    x, y = run_batch(tok, paths.DEFAULT_CORPUS.read_text(encoding="utf-8"), 8, model.config.block_size)
    return measure_step(model, settings.config, x, y, settings.dtype), settings


def test_the_reference_step_loses_more_updates_in_bf16_as_the_learning_rate_decays():
    m, settings = _reference_step()
    assert settings.dtype == "float32" and settings.config.optimizer == "muon"  # as the reference run trained
    view = m.precision
    bf16 = [row.lost["bfloat16"] / row.total for row in view.lost]
    assert bf16 == sorted(bf16) and bf16[-1] > 0.5  # smaller steps, more of them lost
    assert all(row.lost["float32"] <= row.lost["float16"] <= row.lost["bfloat16"] for row in view.lost)
    e = view.example
    assert e is not None and e.bf16_after == e.bf16_weight and e.float32_after != e.weight
    assert abs(e.update) <= e.bf16_spacing / 2
    assert sum(view.hist_counts) + view.zero_entries == m.parameters
    best = widget.best_scale(view)
    assert best.fp16_zero == 0 and best.fp16_overflow == 0
    assert view.underflow[0].fp16_subnormal > best.fp16_subnormal
    plain, lifted = widget.histogram(view, 0), widget.histogram(view, best.scale_exponent)
    drawn = {t.name: sum(t.y) for t in plain.data}
    assert sum(drawn.values()) == sum(view.hist_counts) and drawn["subnormal in fp16: fewer digits"] > 0
    assert sum(sum(t.y) for t in lifted.data if t.name == "kept in fp16") > drawn["kept in fp16"]


def test_colours_read_in_both_themes():
    for c in [*widget.PART_COLOURS.values(), *widget.FATE_COLOURS.values(), widget.LIMIT_COLOUR]:
        for theme, background in BACKGROUNDS.items():
            assert contrast(c, background) >= NON_TEXT_CONTRAST, (c, theme)
    fig = widget.published_chart(published_memory("gpt2_1_5b"))
    assert fig.layout.xaxis.title.text
    assert sum(v > 0 for t in fig.data for v in t.x) == 3 + 4  # float32: 3 parts; mixed: 4 (the master copy too)


def test_widget_measures_a_step_and_reacts(db):
    at = widget_app("training_memory", {"model": "llama3_8b"})
    no_errors(at)
    shown = texts(at)
    assert "The reference model's run trained in **float32**" in shown
    assert "2 + 2 + 4 + 8 = 16 bytes" in shown and "**128 GB**" in shown
    assert "At 2^0 = 1: in fp16" in shown and "The weight did not move." in shown
    at.selectbox(key="harness-model").set_value("gpt3_175b").run()
    no_errors(at)
    assert "No chip in the catalogue holds it alone" in texts(at) and "**2.8 TB**" in texts(at)
    at.select_slider(key="harness-scale").set_value(16).run()
    no_errors(at)
    assert "At 2^16 = 65,536: in fp16 **0** of" in texts(at)
