"""The mlp_bend widget (lesson 6): its engine function on the reference model (without the bend the MLP adds up and
collapses into one matrix; with it, it does not), on a model with biases, its charts, and the widget in AppTest."""

from __future__ import annotations

import json

import pytest
import torch

from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside.mlp_bend import mlp_bend, mlp_inputs, prompt_tokens
from engine.look_inside.sampling import encode_prompt
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer
from tests.ui.conftest import texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, colours, contrast
from ui.widgets import mlp_bend as widget

PROMPT = "ROMEO: What light"


@pytest.fixture(scope="module")
def reference():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    return checkpoint.load_timeline_model(REFERENCE_DIR, step)


def _norm(v: list[float]) -> float:
    return float(torch.tensor(v).norm())


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_without_the_bend_the_mlp_adds_up_and_is_one_matrix(reference, layer):
    model, tok = reference
    C = model.config.n_embd
    view = mlp_bend(model, tok, PROMPT, layer, 7, len(PROMPT) - 1)
    assert (view.tokens[view.a], view.tokens[view.b]) == ("W", "t")
    # without the bend: additivity holds up to float rounding, and W reproduces the two layers
    assert view.straight.gap < 1e-4 and view.straight.share < 1e-5 and view.straight.size > 1
    assert view.collapse_diff < 1e-4
    # with the bend: a real share of the output is missing
    assert view.bent.share > 0.1, view.bent.share
    assert view.bent.gap == pytest.approx(_norm([j - p for j, p in zip(view.bent.joint, view.bent.parts, strict=True)]))
    # the counts, from the model's own shapes
    assert (view.n_embd, view.n_hidden) == (C, 4 * C)
    assert view.two_layer_params == 8 * C * C and view.one_matrix_params == C * C
    assert 0 < view.collapse_rank <= C
    assert view.layer == layer and view.n_layer == model.config.n_layer and not view.bias


def test_the_vectors_are_what_the_real_block_feeds_its_mlp(reference):
    """mlp_inputs re-walks the forward pass; a hook on the real MLP during GPT.forward sees the same vectors, and
    the engine's mlp(a) + mlp(b) is the sum of what the real MLP output at those two positions."""
    model, tok = reference
    layer, a, b = 1, 2, 9
    seen = {}
    mlp = model.transformer.h[layer].mlp
    handle = mlp.register_forward_hook(lambda _m, args, out: seen.update(x=args[0][0], y=out[0]))
    ids, _ = encode_prompt(tok, PROMPT, model.config.block_size)
    idx = torch.tensor([ids])
    try:
        with torch.no_grad():
            model(idx)
            ours = mlp_inputs(model, idx, layer)
    finally:
        handle.remove()
    torch.testing.assert_close(ours, seen["x"], rtol=1e-5, atol=1e-5)
    view = mlp_bend(model, tok, PROMPT, layer, a, b)
    torch.testing.assert_close(torch.tensor(view.bent.parts), seen["y"][a] + seen["y"][b], rtol=1e-4, atol=1e-4)
    hidden = mlp.c_fc(seen["x"][a]).detach()
    torch.testing.assert_close(torch.tensor(view.hidden_a), hidden, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.tensor(view.bent_a), torch.nn.functional.gelu(hidden), rtol=1e-5, atol=1e-5)


def test_units_on_and_off_and_the_curve(reference):
    model, tok = reference
    view = mlp_bend(model, tok, PROMPT, 0, 0, 5)
    hidden_b = model.transformer.h[0].mlp.c_fc(mlp_inputs(model, torch.tensor([encode_prompt(tok, PROMPT, 64)[0]]), 0)[5])
    on_a = [h > 0 for h in view.hidden_a]
    on_b = (hidden_b > 0).tolist()
    assert view.on_a == sum(on_a) and view.on_b == sum(on_b)
    assert view.split == sum(x != y for x, y in zip(on_a, on_b, strict=True))
    assert 0 < view.on_a < view.n_hidden  # some units on, some off: the bend is in use
    xs = [x for x, _ in view.curve]
    assert xs[0] <= min(-4.0, min(view.hidden_a)) and xs[-1] >= max(4.0, max(view.hidden_a))  # every dot on the line
    assert -0.2 < view.gelu_floor < -0.15  # GELU's dip left of 0
    assert all(abs(y) < 1e-3 for x, y in view.curve if x <= -4) and all(abs(y - x) < 1e-3 for x, y in view.curve if x >= 4)


def test_positions_outside_the_prompt_are_clamped_and_long_prompts_cut(reference):
    model, tok = reference
    view = mlp_bend(model, tok, "ab", 0, -3, 50)
    assert (view.a, view.b) == (0, 1)
    tokens, dropped = prompt_tokens(tok, "x" * 70, model.config.block_size)
    assert len(tokens) == 64 and dropped == 6
    with pytest.raises(ValueError):
        mlp_bend(model, tok, "", 0, 0, 0)


def test_a_model_with_biases_collapses_to_a_matrix_plus_a_fixed_vector():
    """With biases the straight MLP is affine: plain mlp(a) + mlp(b) would miss by the fixed vector, so the engine
    measures from mlp(0), and W plus that vector still reproduces the two layers."""
    torch.manual_seed(0)
    C = 16
    model = GPT(GPTConfig(block_size=8, vocab_size=5, n_layer=2, n_head=2, n_embd=C, bias=True))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # non-zero biases, and large enough hidden numbers to bend
    tok = CharTokenizer.from_text("abcde")
    view = mlp_bend(model, tok, "abcab", 1, 0, 3)
    assert view.bias and view.straight.gap < 1e-4 and view.collapse_diff < 1e-4
    assert view.bent.share > 0.01
    assert view.two_layer_params == 8 * C * C + 4 * C + C and view.one_matrix_params == C * C + C
    mlp = model.transformer.h[1].mlp
    with torch.no_grad():
        zero = mlp.c_proj(mlp.c_fc(torch.zeros(C)))
    assert float(zero.norm()) > 0.1  # without subtracting mlp(0) the straight MLP would not add up
    assert widget.parts_label(view) == "mlp(a) + mlp(b) − mlp(0)"


def test_charts_have_titled_axes_and_colours_that_read_on_both_themes(reference):
    model, tok = reference
    view = mlp_bend(model, tok, PROMPT, 1, 0, 3)
    for fig in (widget.curve_chart(view), widget.sum_chart(view.bent, view)):
        layout = fig.to_plotly_json()["layout"]
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
        found = colours(fig.to_plotly_json()["data"])
        assert found and not [w for w, _ in found if "textfont" in w]  # text takes the theme's colour
        assert all(contrast(c, bg) >= NON_TEXT_CONTRAST for _, c in found for bg in BACKGROUNDS.values()), found
    curve = widget.curve_chart(view)
    off, on, line = curve.data
    assert (len(off.x), len(on.x)) == (view.n_hidden - view.on_a, view.on_a) and view.n_hidden == 4 * view.n_embd
    assert max(off.x) <= 0 < min(on.x) and line.name == "GELU"
    bars = widget.sum_chart(view.straight, view)
    assert list(bars.data[0].y) == pytest.approx(list(bars.data[1].y), abs=1e-4)  # without the bend: equal bars
    assert widget.sum_text(view.bent, view).count(";") == widget.SHOWN - 1


def test_widget_reacts_to_layer_tokens_and_prompt(db, reference):
    model, tok = reference
    at = widget_app("mlp_bend")
    assert not at.exception and not at.error
    shown = texts(at)
    view = mlp_bend(model, tok, PROMPT, 0, 0, len(PROMPT) - 1)  # the defaults: layer 1, first and last token
    assert "Here **a** is the vector at “R” ·0 and **b** the one at “t” ·16" in shown
    assert widget.gap_line(view.bent, view) in shown and widget.gap_line(view.straight, view) in shown
    assert f"**{view.two_layer_params:,}** parameters; W holds **{view.one_matrix_params:,}**" in shown
    assert len(at.get("plotly_chart")) == 3
    at.selectbox(key="harness-layer").set_value(2).run()
    at.selectbox(key="harness-a").set_value(7).run()
    at.selectbox(key="harness-b").set_value(8).run()
    assert not at.exception and not at.error
    view = mlp_bend(model, tok, PROMPT, 2, 7, 8)
    assert "In layer 3" in texts(at) and "“W” ·7" in texts(at) and "“h” ·8" in texts(at)
    assert widget.gap_line(view.bent, view) in texts(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][1]["name"] == f"{view.on_a} switched on at “W” ·7"
    at.text_input(key="harness-prompt").set_value("To be").run()  # shorter: the picked positions no longer exist
    assert not at.exception and not at.error
    assert "“T” ·0" in texts(at) and "“e” ·4" in texts(at)
    at.text_input(key="harness-prompt").set_value("x" * 70).run()
    assert "cut from the start" in texts(at) and not at.exception
    at.text_input(key="harness-prompt").set_value("").run()
    assert "Type a prompt" in texts(at) and not at.exception


def test_inputs_match_the_real_block_on_the_lesson_7_design():
    """The learner's run turns on rotary positions and QK-norm (inside attention): mlp_inputs still sees what the
    real MLP reads."""
    torch.manual_seed(1)
    model = GPT(GPTConfig(block_size=8, vocab_size=5, n_layer=2, n_head=2, n_embd=16, rope=True, qk_norm=True)).eval()
    idx = torch.tensor([[0, 3, 1, 4, 2]])
    seen = {}
    handle = model.transformer.h[1].mlp.register_forward_hook(lambda _m, args, _out: seen.update(x=args[0][0]))
    try:
        with torch.no_grad():
            model(idx)
            ours = mlp_inputs(model, idx, 1)
    finally:
        handle.remove()
    torch.testing.assert_close(ours, seen["x"])
