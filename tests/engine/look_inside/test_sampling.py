"""engine.look_inside.sampling: temperature, top-k, top-p, the next-token distribution, generation step by step."""

from __future__ import annotations

import math

import pytest
import torch

from engine.look_inside.sampling import (
    GREEDY_BELOW,
    display_text,
    encode_prompt,
    entropy,
    filter_probs,
    generate_steps,
    next_token_distribution,
)
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer

LOGITS = torch.tensor([1.5, -0.3, 2.7, 0.0, 2.7, -2.0, 0.9, 0.4])  # a tie at the top: ids 2 and 4


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer.from_text("abcdefgh ijklm\n")


@pytest.fixture(scope="module")
def model(tok: CharTokenizer) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=8, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32))


@pytest.mark.parametrize("temperature", [0.0, 1e-9, GREEDY_BELOW / 2])
def test_temperature_near_zero_is_greedy(temperature: float) -> None:
    probs = filter_probs(LOGITS, temperature=temperature)
    assert probs.tolist() == [0, 0, 1, 0, 0, 0, 0, 0]  # the tie goes to the lower id
    assert torch.isfinite(probs).all()


def test_small_temperature_above_the_cut_is_still_finite_and_nearly_greedy() -> None:
    probs = filter_probs(torch.tensor([3.0, 1.0, 2.0]), temperature=GREEDY_BELOW * 2)
    assert torch.isfinite(probs).all() and probs[0] > 0.999


def test_entropy_rises_with_temperature() -> None:
    temps = [0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 5.0, 20.0]
    ents = [entropy(filter_probs(LOGITS, temperature=t)) for t in temps]
    assert all(a < b for a, b in zip(ents, ents[1:], strict=False))
    assert ents[-1] < math.log(len(LOGITS)) and ents[-1] > 0.99 * math.log(len(LOGITS))  # nearly uniform


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 100])
def test_top_k_keeps_exactly_k(k: int) -> None:
    probs = filter_probs(LOGITS, top_k=k)
    assert int((probs > 0).sum()) == min(k, len(LOGITS))
    assert abs(float(probs.sum()) - 1) < 1e-6


def test_top_k_ties_are_broken_by_the_lower_id() -> None:
    assert (filter_probs(LOGITS, top_k=1) > 0).nonzero().flatten().tolist() == [2]
    flat = torch.zeros(6)
    assert (filter_probs(flat, top_k=3) > 0).nonzero().flatten().tolist() == [0, 1, 2]


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    probs = torch.tensor([0.1, 0.4, 0.3, 0.2])
    logits = probs.log()
    kept = lambda p: (filter_probs(logits, top_p=p) > 0).nonzero().flatten().tolist()  # noqa: E731
    assert kept(0.3) == [1]  # 0.4 alone reaches 0.3
    assert kept(0.4) == [1]
    assert kept(0.5) == [1, 2]  # 0.4 < 0.5, 0.4 + 0.3 reaches it
    assert kept(0.75) == [1, 2, 3]
    assert kept(0.95) == [0, 1, 2, 3]
    assert kept(1.0) == [0, 1, 2, 3]
    out = filter_probs(logits, top_p=0.5)
    assert torch.allclose(out, torch.tensor([0, 0.4, 0.3, 0]) / 0.7, atol=1e-6)


@pytest.mark.parametrize("t, k, p", [(1.0, None, None), (0.7, 3, None), (1.3, None, 0.8), (2.0, 4, 0.5), (0.0, 2, 0.1)])
def test_probabilities_sum_to_one(t: float, k: int | None, p: float | None) -> None:
    probs = filter_probs(LOGITS, temperature=t, top_k=k, top_p=p)
    assert abs(float(probs.sum()) - 1) < 1e-6 and (probs >= 0).all()


def test_bad_knobs_are_refused() -> None:
    for kwargs in ({"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            filter_probs(LOGITS, **kwargs)


def test_display_text_and_prompt_cut(tok: CharTokenizer) -> None:
    assert display_text(tok, tok.encode(" ")[0]) == "␣" and display_text(tok, tok.encode("\n")[0]) == "↵"
    ids, dropped = encode_prompt(tok, "abcdefghijkl", block_size=8)
    assert ids == tok.encode("efghijkl") and dropped == 4
    with pytest.raises(ValueError, match="empty"):
        encode_prompt(tok, "", block_size=8)


def test_next_token_distribution(model: GPT, tok: CharTokenizer) -> None:
    out = next_token_distribution(model, tok, "ab cdefghijk", temperature=0.8, top_k=4, show=tok.vocab_size)
    # 12 tokens, block_size 8: generation reads 6 of them here (engine.transform.kv_cache.generation_window), so do the bars
    assert out.dropped == 6 and out.tokens == list("fghijk")
    assert out.kept == 4
    assert abs(sum(c.raw for c in out.candidates) - 1) < 1e-5
    assert abs(sum(c.filtered for c in out.candidates) - 1) < 1e-5
    assert [c.filtered > 0 for c in out.candidates] == [True] * 4 + [False] * (tok.vocab_size - 4)
    assert out.entropy_filtered < out.entropy_raw
    with torch.no_grad():
        logits, _ = model(torch.tensor([tok.encode("defghijk")]))
    top = int(logits[0, -1].argmax())
    assert out.candidates[0].id == top
    assert model.training  # the mode it was found in


def test_generation_is_reproducible_and_keeps_its_distributions(model: GPT, tok: CharTokenizer) -> None:
    a = list(generate_steps(model, tok, "abc", 12, temperature=1.2, top_p=0.9, seed=7))
    b = list(generate_steps(model, tok, "abc", 12, temperature=1.2, top_p=0.9, seed=7))
    assert a == b and len(a) == 12
    for step in a:
        assert 0 < step.prob <= 1 and 0 < step.raw <= 1 and not step.forced
        assert len(step.alternatives) == 5
        assert step.alternatives[0].raw >= step.alternatives[-1].raw


def test_forced_tokens_are_taken(model: GPT, tok: CharTokenizer) -> None:
    forced = tok.encode("hij")
    steps = list(generate_steps(model, tok, "abc", 5, top_k=1, forced=forced))
    assert [s.id for s in steps[:3]] == forced and [s.forced for s in steps] == [True] * 3 + [False] * 2
    assert steps[1].prob in (0.0, 1.0)  # top-k 1: a forced token may be one the knobs removed
    with pytest.raises(ValueError, match="vocabulary"):
        list(generate_steps(model, tok, "abc", 1, forced=[tok.vocab_size]))


def test_greedy_generation_matches_model_generate_at_temperature_zero(model: GPT, tok: CharTokenizer) -> None:
    steps = list(generate_steps(model, tok, "abc", 10, temperature=0.0))
    expected = model.generate(torch.tensor([tok.encode("abc")]), 10, top_k=1)[0, 3:].tolist()
    assert [s.id for s in steps] == expected


def test_cached_and_uncached_generation_agree_past_block_size(model: GPT, tok: CharTokenizer) -> None:
    # 20 new tokens after a 6-token prompt: the window slides past block_size 8, so the cache is rebuilt
    kw = dict(temperature=1.0, seed=3, alternatives=tok.vocab_size)
    cached = list(generate_steps(model, tok, "abcdef", 20, use_cache=True, **kw))
    plain = list(generate_steps(model, tok, "abcdef", 20, use_cache=False, **kw))
    assert [s.id for s in cached] == [s.id for s in plain]
    for c, p in zip(cached, plain, strict=True):
        assert [a.raw for a in c.alternatives] == pytest.approx([a.raw for a in p.alternatives], abs=1e-5)


def test_eval_mode_runs_on_one_thread_and_restores_everything(model: GPT) -> None:
    from engine.look_inside.sampling import eval_mode

    torch.set_num_threads(2)  # the conftest restores its own setting afterwards
    model.train()
    with eval_mode(model):
        assert torch.get_num_threads() == 1 and not model.training and not torch.is_grad_enabled()
    assert torch.get_num_threads() == 2 and model.training and torch.is_grad_enabled()
