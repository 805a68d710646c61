"""Lesson 6's worked attention (`attention_arithmetic`): the step-by-step engine function on the reference model
agrees with the model's own attention map and head output, follows the softmax and the mask, and computes the same
with QK-norm and rotary positions on; the widget shows those numbers and reacts to prompt, layer, head and query."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside.attention_steps import attention_steps
from engine.look_inside.inspection import attention_view
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer
from tests.ui.conftest import texts, widget_app
from ui.widgets import attention_arithmetic

PROMPT = "ROMEO:"


@pytest.fixture(scope="module")
def reference():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    return checkpoint.load_timeline_model(REFERENCE_DIR, step)


def test_every_head_matches_the_models_attention_map_and_output(reference):
    model, tok = reference
    view = attention_view(model, tok, PROMPT)  # what the heatmap widget draws
    for layer in range(model.config.n_layer):
        for head in range(model.config.n_head):
            for q in (2, len(PROMPT) - 1):
                s = attention_steps(model, tok, PROMPT, layer, head, q)
                assert s.matches, (layer, head, q, s.weights_gap, s.output_gap)
                assert s.weights == pytest.approx(view.weights[layer][head][q], abs=1e-5)
                assert s.output == pytest.approx(s.model_output, abs=1e-5)


def test_the_steps_are_the_arithmetic_the_lesson_teaches(reference):
    model, tok = reference
    s = attention_steps(model, tok, PROMPT, 1, 2, 3)
    hs = model.config.n_embd // model.config.n_head
    assert s.tokens == list(PROMPT) and s.query_pos == 3 and s.head_size == hs == len(s.query)
    allowed, masked = s.keys[:4], s.keys[4:]
    assert [k.position for k in masked] == [4, 5] and all(k.masked and k.weight == 0 for k in masked)
    assert all(k.key is None and k.dot is None for k in masked)
    for k in allowed:  # q·k by hand, ÷ √hs, e^score, ÷ the sum
        assert k.dot == pytest.approx(math.fsum(a * b for a, b in zip(s.query, k.key, strict=True)), abs=1e-9)
        assert k.score == pytest.approx(k.dot / math.sqrt(hs))
        assert k.exp == pytest.approx(math.exp(k.score))
        assert k.weight == pytest.approx(k.exp / s.exp_sum)
    assert sum(s.weights) == pytest.approx(1.0, abs=1e-12)
    by_hand = [math.fsum(k.weight * k.value[i] for k in allowed) for i in range(hs)]
    assert s.output == pytest.approx(by_hand, abs=1e-9)


def test_the_first_position_can_only_look_at_itself(reference):
    model, tok = reference
    s = attention_steps(model, tok, PROMPT, 0, 1, 0)
    assert s.weights == [1.0, 0, 0, 0, 0, 0] and s.matches
    assert s.output == pytest.approx(s.keys[0].value)  # all the weight on one value: the output is that value


def test_later_text_changes_nothing_before_it(reference):
    """The mask at work: an earlier position computes the same row however the prompt goes on."""
    model, tok = reference
    short = attention_steps(model, tok, PROMPT, 0, 0)
    longer = attention_steps(model, tok, PROMPT + " What light", 0, 0, len(PROMPT) - 1)
    assert longer.weights[: len(PROMPT)] == pytest.approx(short.weights, abs=1e-6)
    assert longer.output == pytest.approx(short.output, abs=1e-6)


def test_qk_norm_and_rotary_positions_are_computed_as_the_model_does():
    torch.manual_seed(0)
    tok = CharTokenizer.from_text("abcdef ")
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=16, qk_norm=True,
                          rope=True))
    s = attention_steps(model, tok, "abc fedcba", 1, 1, 6, max_tokens=8)
    assert s.matches and s.qk_norm and s.rope
    assert s.dropped == 2 and s.tokens == list("c␣fedcba") and len(s.keys) == 8
    assert math.hypot(*s.query) == pytest.approx(math.sqrt(8), rel=1e-3)  # QK-norm: length √hs (up to its eps)


def test_out_of_range_choices_are_refused(reference):
    model, tok = reference
    with pytest.raises(ValueError, match="layers of"):
        attention_steps(model, tok, PROMPT, model.config.n_layer, 0)
    with pytest.raises(ValueError, match="positions 0 to 5"):
        attention_steps(model, tok, PROMPT, 0, 0, 6)


def test_tables_mark_the_mask_and_sum_to_one(reference):
    model, tok = reference
    s = attention_steps(model, tok, "a&b", 0, 0, 1)
    rows = attention_arithmetic.score_rows(s)
    assert rows[0]["key position"] == "“a” ·0" and rows[2]["key position"] == "“b” ·2"
    assert rows[2]["q·k"] == "masked (later position)" and rows[2]["weight"] == "0"
    assert rows[-1]["weight"] == "**1.0000**"
    vectors = attention_arithmetic.md_rows(attention_arithmetic.vectors(s), 6)
    assert vectors[0]["vector"] == "**q** “\\&” ·1" and len(vectors) == 3 and len(vectors[0]) == 7
    assert vectors[1]["vector"] == "k “a” ·0" and vectors[1]["#1"] == f"{s.keys[0].key[0]:.4f}"
    values = attention_arithmetic.value_rows(s, 6)
    assert [v["weight"] for v in values] == [f"{s.keys[0].weight:.4f}", f"{s.keys[1].weight:.4f}", ""]
    assert values[-1]["#2"] == f"**{s.output[1]:.4f}**"
    full = attention_arithmetic.frame(attention_arithmetic.vectors(s, md=False))
    assert list(full) == ["#", "q “&” ·1", "k “a” ·0", "k “&” ·1"] and len(full["q “&” ·1"]) == s.head_size
    assert "masked" in attention_arithmetic.chart(s).data[0].text


def test_widget_works_through_the_chosen_row(db, reference):
    model, tok = reference
    at = widget_app("attention_arithmetic", {"prompt": PROMPT, "layer": 1, "head": 1})
    assert not at.exception and not at.error
    shown = texts(at)
    s = attention_steps(model, tok, PROMPT, 0, 0)  # the default: the last position
    assert "Matches the heatmap row ✓" in shown and "how much does position “\\:” ·5 take" in shown
    assert f"| {s.keys[2].dot:.4f} |" in shown and f"**{attention_arithmetic.num(s.exp_sum)}**" in shown

    at.text_input(key="harness-prompt").set_value("To be").run()
    at.selectbox(key="harness-layer").set_value(2).run()
    at.selectbox(key="harness-head").set_value(3).run()
    at.button_group(key="harness-query-5").set_value(1).run()
    assert not at.exception and not at.error
    s = attention_steps(model, tok, "To be", 2, 3, 1)
    shown = texts(at)
    assert "Layer 3, head 4: how much does position “o” ·1 take" in shown
    assert f"| {s.keys[0].weight:.4f} |" in shown and "masked (later position)" in shown
    assert "Matches the heatmap row ✓" in shown
    heatmap = attention_view(model, tok, "To be").weights[2][3][1]  # the heatmap widget's row for this query
    assert f"the row of “o” ·1 reads {' · '.join(f'{w:.2f}' for w in heatmap)}." in shown
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["y"][:2] == pytest.approx(s.weights[:2], abs=1e-9)


def test_widget_keeps_a_long_prompt_short(db):
    at = widget_app("attention_arithmetic", {"prompt": "ROMEO: What light through"})
    assert not at.exception and not at.error
    assert f"keeps its last {attention_arithmetic.MAX_TOKENS}" in texts(at)
    query = at.button_group(key=f"harness-query-{attention_arithmetic.MAX_TOKENS}")
    assert query.value == attention_arithmetic.MAX_TOKENS - 1
    at.text_input(key="harness-prompt").set_value("café").run()
    assert not at.exception and "cannot read this prompt" in texts(at)


def test_chart_reads_in_both_themes(reference):
    """As tests/ui/test_chart_accessibility.py asks of every chart: titled axes, no colour fixed in code (the theme's
    own colours read on both backgrounds); the score table above it is its text version."""
    model, tok = reference
    layout = attention_arithmetic.chart(attention_steps(model, tok, PROMPT, 0, 0, 2)).to_plotly_json()
    assert layout["layout"]["xaxis"]["title"]["text"] and layout["layout"]["yaxis"]["title"]["text"]
    assert "color" not in json.dumps({k: v for k, v in layout.items() if k != "layout"} | {
        "layout": {k: v for k, v in layout["layout"].items() if k != "template"}})


def test_widget_on_a_run_with_qk_norm_and_rotary_positions(db, monkeypatch, tmp_path):
    """The learner's lesson-7 run turns both refinements on: the widget says its q and k are shown after them, and
    its arithmetic still matches that model's own attention."""
    from ui import model_source

    torch.manual_seed(0)
    tok = CharTokenizer.from_text("ROMEO: ")
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=16, qk_norm=True,
                          rope=True)).eval()
    own = model_source.ModelSource(str(tmp_path / "own-run"), "Your run from lesson 7", own=True)
    monkeypatch.setattr(model_source, "sources", lambda _learner: [own])
    monkeypatch.setattr(model_source, "load_model", lambda _source, _step=None: (model, tok))
    at = widget_app("attention_arithmetic", {"prompt": PROMPT, "layer": 2, "head": 2})
    assert not at.exception and not at.error
    shown = texts(at)
    assert "uses QK-norm and rotary positions: the query and keys are shown after them" in shown
    assert "Matches the heatmap row ✓" in shown and "holds **8** numbers (C = 16 ÷ 2 heads)" in shown
