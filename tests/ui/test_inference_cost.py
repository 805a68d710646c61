"""Lesson 8's inference widget: `engine.cost.inference` on the reference model (the same tokens with and
without the cache, FLOPs of about 2N per token, the uncached FLOPs growing with the text, bytes per token = weights x
bytes per weight), its chart read in both themes, and the widget in AppTest, timed on a press.

No test says the cache is faster: timings on a busy two-core machine belong in benchmarks. They are only positive.
"""

from __future__ import annotations

import json
import math

import pytest

from engine.cost.flops import count_parameters
from engine.cost.inference import forward_flops, inference_cost, weights_read
from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from tests.ui.conftest import texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, colours, contrast
from ui.widgets import inference_cost as widget

NEW = 30


@pytest.fixture(scope="module")
def reference():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    return checkpoint.load_timeline_model(REFERENCE_DIR, step)


@pytest.fixture(scope="module")
def cost(reference):
    model, tok = reference
    return inference_cost(model, tok, "ROMEO:", NEW, seed=0, rounds=1)


def test_cached_and_uncached_write_the_same_tokens(reference, cost):
    model, tok = reference
    assert cost.same_tokens and cost.new_tokens == NEW and cost.steps == NEW - 1
    assert len(tok.encode(cost.text)) == NEW
    assert cost.prompt_tokens == 6 and cost.dropped == 0
    again = inference_cost(model, tok, "ROMEO:", NEW, seed=0, rounds=1)
    assert again.text == cost.text  # seeded: the same text every time
    assert inference_cost(model, tok, "ROMEO:", NEW, seed=1, rounds=1).text != cost.text
    assert cost.prefill_s > 0 and all(t > 0 for t in cost.cached_s + cost.uncached_s)


def test_flops_per_token_are_2n_within_attention_and_head(reference, cost):
    model, _ = reference
    c = model.config
    n = count_parameters(c).non_embedding
    assert cost.parameters == n == 12 * c.n_layer * c.n_embd**2 + (2 * c.n_layer + 1) * c.n_embd  # matrices, norms
    for flops, keys in zip(cost.flops_cached, cost.context, strict=True):  # no rebuild in 30 tokens: one position
        attention = 4 * c.n_layer * c.n_embd * keys
        head = 2 * c.n_embd * c.vocab_size
        assert flops - 2 * n == attention + head
        assert abs(flops - 2 * n) / (2 * n) < 0.1  # attention and the head are small beside 2N here
    assert cost.computed == [1] * cost.steps


def test_uncached_flops_grow_with_the_text(cost):
    assert cost.context == list(range(7, 7 + cost.steps))  # the prompt's 6 tokens, then one more each step
    growth = [b - a for a, b in zip(cost.flops_uncached, cost.flops_uncached[1:], strict=False)]
    assert all(g > 0 for g in growth)
    assert all(b > a for a, b in zip(growth, growth[1:], strict=False))  # attention over the text: faster than linear
    ratio = cost.flops_uncached[-1] / cost.flops_cached[-1]
    assert cost.context[-1] * 0.9 < ratio < cost.context[-1] * 1.1  # it redoes every position of the text


def test_the_window_slides_and_the_cache_is_rebuilt(reference):
    """Past block_size the window drops its oldest quarter: the cached step reads the rest again once."""
    model, tok = reference
    block = model.config.block_size
    cost = inference_cost(model, tok, "x" * (block - 2), 8, rounds=1)
    assert cost.same_tokens and max(cost.context) == block
    rebuilt = [i for i, n in enumerate(cost.computed) if n > 1]
    assert len(rebuilt) == 1 and cost.computed[rebuilt[0]] == cost.context[rebuilt[0]] == block - block // 4
    assert cost.flops_cached[rebuilt[0]] == forward_flops(model.config, block - block // 4, 0)
    assert widget.window_fills(cost) == 2 + cost.context.index(block)
    circles = widget.chart(cost, widget.MEASURES[1]).data[2]  # the rebuild, marked on the cached line
    assert list(circles.x) == [2 + rebuilt[0]] and list(circles.y) == [cost.flops_cached[rebuilt[0]]]


def test_bytes_per_token_are_every_weight_once(reference, cost):
    model, _ = reference
    total = sum(p.numel() for p in model.parameters())
    c = model.config
    assert cost.weights == weights_read(model) == total - c.block_size * c.n_embd + c.n_embd
    assert cost.bytes_per_weight == 4 and cost.dtype == "float32"
    assert cost.weight_bytes == cost.weights * 4
    # 2 FLOPs per weight, 4 bytes per weight: half a FLOP per byte, at batch 1 in float32
    assert math.isclose(cost.decode_intensity, 0.5, rel_tol=0.02)
    assert cost.prefill_intensity > cost.prompt_tokens * 0.45  # the prefill shares one read among its positions


def test_the_chart_reads_in_both_themes(cost):
    for measure in widget.MEASURES:
        fig = widget.chart(cost, measure).to_plotly_json()
        assert fig["layout"]["xaxis"]["title"]["text"] and fig["layout"]["yaxis"]["title"]["text"]
        assert [len(t["y"]) for t in fig["data"]] == [cost.steps, cost.steps]  # no rebuild: no circles
        fig["layout"].pop("template", None)
        for where, colour in colours(fig):
            assert "textfont" not in where
            for background in BACKGROUNDS.values():
                assert contrast(colour, background) >= NON_TEXT_CONTRAST, (where, colour)
    assert widget.chart_text(cost).startswith("Chart as text: with the cache a token took ")


def test_the_widget_times_on_a_press(db):
    at = widget_app("inference_cost", {"prompt": "ROMEO:", "new_tokens": 20})
    assert not at.exception and not at.error
    assert "Press **Time it**" in texts(at) and not at.get("plotly_chart")
    at.button(key="harness-run").click().run()
    assert not at.exception and not at.error
    shown = texts(at)
    assert "20 new tokens, the same tokens both ways" in shown
    assert "2N = " in shown and "FLOPs per byte read" in shown and "lesson 9" in shown
    assert [m.label for m in at.metric] == ["Prefill", "Decode, cached", "Decode, no cache", "Cache speed-up"]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(spec["data"]) == 2 and len(spec["data"][0]["y"]) == 19
    at.radio(key="harness-measure").set_value(widget.MEASURES[1]).run()  # a rerun keeps the timing, no new one
    assert not at.exception and "FLOPs for this token" in at.get("plotly_chart")[0].proto.spec
    at.text_input(key="harness-prompt").set_value("JULIET:").run()  # new inputs: the old timing is not shown
    assert "Press **Time it**" in texts(at) and not at.get("plotly_chart")
    at.text_input(key="harness-prompt").set_value("ROMEO: 🙂").run()  # a character the model has never seen
    at.button(key="harness-run").click().run()
    assert not at.exception and "cannot read this prompt" in texts(at) and not at.get("plotly_chart")
