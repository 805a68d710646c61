"""engine.look_inside.inspection: attention views, the logit lens, the parameter breakdown and the forward pass by stage."""

from __future__ import annotations

import pytest
import torch

from engine.look_inside.inspection import attention_view, forward_stages, logit_lens, parameter_breakdown
from engine.look_inside.sampling import next_token_distribution
from engine.train.config import PRESETS
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer, train_bpe

CFG = GPTConfig(block_size=8, vocab_size=16, n_layer=3, n_head=2, n_embd=32)


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    tok = CharTokenizer.from_text("abcdefgh ijklmn\n")
    assert tok.vocab_size == CFG.vocab_size
    return tok


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(CFG)


def test_attention_view_shapes_rows_and_causality(model: GPT, tok: CharTokenizer) -> None:
    view = attention_view(model, tok, "ab c\nd")
    assert view.tokens == ["a", "b", "␣", "c", "↵", "d"] and view.dropped == 0
    w = torch.tensor(view.weights)
    assert w.shape == (CFG.n_layer, CFG.n_head, 6, 6) and (view.n_layer, view.n_head) == (3, 2)
    assert torch.allclose(w.sum(-1), torch.ones(CFG.n_layer, CFG.n_head, 6), atol=1e-5)
    assert torch.all(torch.triu(w, diagonal=1) == 0)


def test_attention_view_cuts_long_prompts(model: GPT, tok: CharTokenizer) -> None:
    view = attention_view(model, tok, "abcdefghijkl")
    assert view.dropped == 4 and view.tokens == list("efghijkl")
    assert torch.tensor(view.weights).shape == (CFG.n_layer, CFG.n_head, CFG.block_size, CFG.block_size)


def test_logit_lens_last_layer_is_the_real_prediction(model: GPT, tok: CharTokenizer) -> None:
    lens = logit_lens(model, tok, "abcdefghijk", top=4)
    assert lens.dropped == 3 and [row.layer for row in lens.layers] == [0, 1, 2, 3]
    assert lens.layers[0].name == "embeddings" and lens.layers[-1].name == "after block 3"
    real = next_token_distribution(model, tok, "abcdefghijk", show=4)
    last = lens.layers[-1].top
    assert [i for i, _, _ in last] == [c.id for c in real.candidates]
    assert [p for _, _, p in last] == pytest.approx([c.raw for c in real.candidates], abs=1e-6)
    for row in lens.layers:
        assert len(row.top) == 4 and all(a[2] >= b[2] for a, b in zip(row.top, row.top[1:], strict=False))


@pytest.mark.parametrize(
    "cfg",
    [
        PRESETS["tiny"].model_config(65),
        PRESETS["lesson"].model_config(65),
        GPTConfig(block_size=12, vocab_size=40, n_layer=2, n_head=3, n_embd=24, bias=True),
    ],
    ids=["tiny", "lesson", "bias"],
)
def test_parameter_parts_sum_to_the_model(cfg: GPTConfig) -> None:
    model = GPT(cfg)
    parts = {p.name: p for p in parameter_breakdown(model)}
    assert sum(p.count for p in parts.values()) == sum(p.numel() for p in model.parameters())
    C, L = cfg.n_embd, cfg.n_layer
    b = 1 if cfg.bias else 0
    assert parts["token embeddings"].count == cfg.vocab_size * C
    assert parts["position embeddings"].count == cfg.block_size * C
    assert parts["attention"].count == L * (C * 3 * C + 3 * C * b + C * C + C * b)
    assert parts["MLP"].count == L * (C * 4 * C + 4 * C * b + 4 * C * C + C * b)
    assert parts["norms"].count == (2 * L + 1) * C * (1 + b)
    assert parts["output head"].count == 0 and "tied" in parts["output head"].note


def test_forward_stages_shapes_follow_the_config(model: GPT, tok: CharTokenizer) -> None:
    stages = forward_stages(model, tok, "abc de")
    T, C, V = 6, CFG.n_embd, CFG.vocab_size
    shapes = {s.name: s.shape for s in stages}
    assert shapes["tokens"] == (T,)
    for name in ("token embeddings", "position embeddings", "embeddings", "final norm"):
        assert shapes[name] == (T, C)
    for i in range(1, CFG.n_layer + 1):
        assert shapes[f"block {i} output"] == (T, C)
    assert shapes["logits"] == (T, V) and shapes["probabilities (last position)"] == (V,)
    assert [s.name for s in stages][:4] == ["tokens", "token embeddings", "position embeddings", "embeddings"]
    probs = stages[-1].summary
    assert abs(probs["sum"] - 1) < 1e-5 and 0 < probs["top probability"] <= 1
    assert all(isinstance(v, float) for s in stages for v in s.summary.values())
    assert stages[-1].summary["top probability"] == pytest.approx(
        next_token_distribution(model, tok, "abc de", show=1).candidates[0].raw, abs=1e-6
    )


def test_works_with_a_bpe_tokenizer() -> None:
    tok = train_bpe("the cat sat on the mat. " * 40, vocab_size=270)
    torch.manual_seed(1)
    model = GPT(GPTConfig(block_size=8, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16))
    view = attention_view(model, tok, "the cat sat")
    assert view.tokens[0] == "the" and all("␣" in t for t in view.tokens[1:])
    assert len(logit_lens(model, tok, "the cat").layers) == 2


def test_bench_timings_rows() -> None:
    from bench.inspection import timings

    rows = timings(repeat=1)
    assert len(rows) == 7 and all(isinstance(k, str) and isinstance(v, str) for k, v in rows)
    assert rows[1][0].startswith("next-token probabilities") and rows[1][1].endswith(" ms")
    assert torch.get_num_threads() == 1  # the conftest's setting, restored
