"""Lesson 6's look-inside widgets (attention heatmap, parameter breakdown, forward pass): their pure helpers on the
reference model, and each widget rendering and reacting in AppTest."""

from __future__ import annotations

import json

from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside.inspection import attention_view, forward_stages, parameter_breakdown
from tests.ui.conftest import texts, widget_app
from ui.widgets import attention_heatmap, forward_pass
from ui.widgets import parameter_breakdown as breakdown_widget

PROMPT = "ROMEO: What light through yonder"


def _reference():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    return checkpoint.load_timeline_model(REFERENCE_DIR, step)


def test_heatmap_keeps_repeated_tokens_apart_and_shows_the_mask():
    model, tok = _reference()
    view = attention_view(model, tok, PROMPT)
    fig = attention_heatmap.chart(view, 0, 0)
    ticks = list(fig.layout.xaxis.ticktext)
    assert len(ticks) == len(view.tokens) == len(set(ticks)) == len(PROMPT)  # character model: one token per char
    assert ticks[0].startswith("R") and ticks[6].startswith("␣")  # the space after "ROMEO:" is made visible
    hover = fig.data[0].customdata
    assert fig.data[0].z[0][1] is None and fig.data[0].z[1][0] is not None  # the mask is drawn empty
    assert hover[0][1].endswith("(masked: later position)") and hover[1][0].startswith("O → R: ")
    assert "the last position (“r”)" in attention_heatmap.summary(view, 0, 0)


def test_forward_table_names_the_shapes():
    model, tok = _reference()
    c = model.config
    stages = forward_stages(model, tok, PROMPT)
    rows = forward_pass.table(stages, {len(PROMPT): "T", c.n_embd: "C", c.vocab_size: "V"})
    shapes = {r["stage"]: r["shape"] for r in rows}
    assert shapes["tokens"] == f"(T={len(PROMPT)})"
    assert shapes["block 1 output"] == f"(T={len(PROMPT)}, C={c.n_embd})"
    assert shapes["logits"] == f"(T={len(PROMPT)}, V={c.vocab_size})"
    assert shapes["probabilities (last position)"] == f"(V={c.vocab_size})"
    assert len(rows) == 4 + c.n_layer + 3


def test_breakdown_summary_matches_the_model():
    model, _ = _reference()
    parts = parameter_breakdown(model)
    total = sum(p.numel() for p in model.parameters())
    assert f"**{total:,}** parameters" in breakdown_widget.summary(parts)


def test_attention_widget_reacts_to_prompt_layer_and_head(db):
    at = widget_app("attention_heatmap")
    assert not at.exception and not at.error
    assert "**32 tokens**" in texts(at) and "**1,024** weights" in texts(at)
    at.text_input(key="harness-prompt").set_value("To be, or not").run()
    at.selectbox(key="harness-layer").set_value(2).run()
    at.selectbox(key="harness-head").set_value(3).run()
    assert not at.exception
    assert "**13 tokens**" in texts(at) and "Layer 3, head 4:" in texts(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["xaxis"]["ticktext"][0] == "T ·0"
    at.text_input(key="harness-prompt").set_value("x" * 100).run()
    assert "cut from the start" in texts(at) and "**64 tokens**" in texts(at)


def test_breakdown_and_forward_widgets_render(db):
    at = widget_app("parameter_breakdown")
    assert not at.exception and not at.error
    assert "parameters in all" in texts(at) and at.get("plotly_chart")
    at = widget_app("forward_pass", {"prompt": "ROMEO:"})
    assert not at.exception and not at.error
    assert "T = **6** tokens" in texts(at)
    assert any(e.label.startswith("Logit lens") for e in at.expander)
