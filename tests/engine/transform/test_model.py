"""engine.transform.model (with its kv_cache and rotary modules): shapes, causality, the starting loss, overfitting
one batch, attention maps, sampling, the options, and saved configs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from engine.transform.kv_cache import KVCache, generation_window
from engine.transform.model import GPT, GPTConfig, attention_maps

CFG = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(CFG)


def test_output_shapes(model: GPT) -> None:
    idx = torch.randint(0, CFG.vocab_size, (3, 7))
    logits, loss = model(idx)
    assert logits.shape == (3, 7, CFG.vocab_size)
    assert loss is None
    logits, loss = model(idx, targets=idx)
    assert loss is not None and loss.shape == ()


def test_weight_tying_and_param_count(model: GPT) -> None:
    assert model.lm_head.weight is model.transformer.wte.weight
    all_params = sum(p.numel() for p in model.parameters())  # the tied matrix is counted once
    assert model.num_params() == all_params - CFG.block_size * CFG.n_embd
    assert model.num_params(non_embedding=False) == all_params


def test_later_tokens_do_not_change_earlier_logits(model: GPT) -> None:
    model.eval()
    idx = torch.randint(0, CFG.vocab_size, (2, 12))
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % CFG.vocab_size
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_starting_loss_is_near_ln_vocab(model: GPT) -> None:
    idx = torch.randint(0, CFG.vocab_size, (8, 16))
    _, loss = model(idx, targets=torch.randint(0, CFG.vocab_size, (8, 16)))
    assert abs(loss.item() - math.log(CFG.vocab_size)) < 0.1


def test_can_overfit_one_batch(model: GPT) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, CFG.vocab_size, (4, 16), generator=g)
    y = torch.randint(0, CFG.vocab_size, (4, 16), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2


def test_attention_weights_match_the_fused_kernel(model: GPT) -> None:
    model.eval()
    idx = torch.randint(0, CFG.vocab_size, (2, 10))
    fused, _ = model(idx)
    explicit, _, atts = model(idx, return_attention=True)
    assert torch.allclose(fused, explicit, atol=1e-5)
    assert len(atts) == CFG.n_layer
    for att in atts:
        assert att.shape == (2, CFG.n_head, 10, 10)
        assert torch.allclose(att.sum(-1), torch.ones(2, CFG.n_head, 10), atol=1e-5)
        assert torch.all(torch.triu(att, diagonal=1) == 0)  # nothing attends to the future


def test_attention_maps_are_plain_lists(model: GPT) -> None:
    maps = attention_maps(model, torch.tensor([1, 2, 3, 4]))
    assert len(maps) == CFG.n_layer and len(maps[0]) == CFG.n_head
    assert len(maps[0][0]) == 4 and maps[0][0][0][1] == 0.0
    assert abs(sum(maps[1][0][3]) - 1.0) < 1e-5


def test_generate_extends_and_crops_to_block_size(model: GPT) -> None:
    idx = torch.zeros((2, 3), dtype=torch.long)
    out = model.generate(idx, max_new_tokens=20, top_k=3)  # 23 > block_size: the context is cropped
    assert out.shape == (2, 23)
    assert int(out.min()) >= 0 and int(out.max()) < CFG.vocab_size
    a = model.generate(idx, 10, generator=torch.Generator().manual_seed(5))
    b = model.generate(idx, 10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert model.training  # generate() restores the mode it found


def test_generation_window_grows_then_drops_its_oldest_quarter() -> None:
    block = 64
    windows = [generation_window(n, block) for n in range(1, 400)]
    assert windows[:block] == list(range(1, block + 1))  # everything while it fits
    assert min(windows[block:]) == 48 and max(windows) == block  # then never less than 3/4 of the block
    for before, after in zip(windows, windows[1:], strict=False):
        assert after == before + 1 or (before == block and after == 48)  # one more, or the oldest 16 drop out


def test_cached_generate_reads_the_generation_window(model: GPT) -> None:
    # greedy, 20 tokens past a 3-token prompt (block_size 8): each token is the argmax of a plain forward over
    # the window generation_window names, so the cache rebuilds exactly where the window drops tokens
    idx = torch.tensor([[1, 2, 3]])
    out = model.generate(idx, max_new_tokens=20, top_k=1)[0].tolist()
    with torch.no_grad():
        for n in range(3, 23):
            window = out[n - generation_window(n, CFG.block_size) : n]
            logits, _ = model(torch.tensor([window]))
            assert out[n] == int(logits[0, -1].argmax())


def test_sequence_longer_than_block_size_is_refused(model: GPT) -> None:
    with pytest.raises(AssertionError, match="block_size"):
        model(torch.zeros((1, CFG.block_size + 1), dtype=torch.long))


def test_cached_forward_matches_the_full_forward(model: GPT) -> None:
    model.eval()
    idx = torch.randint(0, CFG.vocab_size, (2, CFG.block_size))
    full, _ = model(idx)  # (2, T, V)
    cache = KVCache(CFG.n_layer)
    parts = [model.forward_cached(idx[:, :5], cache)]  # a prompt of 5, then one token at a time
    parts += [model.forward_cached(idx[:, t : t + 1], cache) for t in range(5, CFG.block_size)]
    assert cache.length == CFG.block_size
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
    with pytest.raises(AssertionError, match="block_size"):
        model.forward_cached(idx[:, :1], cache)



OPTIONS = dict(qk_norm=True, rope=True)


def test_options_keep_the_parameters_and_the_cache_agrees() -> None:
    """The options the lesson preset uses add no parameter, and the cached forward still matches the full one."""
    from dataclasses import replace

    torch.manual_seed(0)
    plain = GPT(CFG)
    torch.manual_seed(0)
    model = GPT(replace(CFG, **OPTIONS)).eval()
    assert [(n, p.shape) for n, p in plain.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]
    for p in model.parameters():  # larger weights than the initial ones, so every option shows in the logits
        torch.nn.init.normal_(p, std=0.2)
    idx = torch.randint(0, CFG.vocab_size, (2, CFG.block_size))
    full, _ = model(idx)  # (2, T, V)
    cache = KVCache(CFG.n_layer)
    parts = [model.forward_cached(idx[:, :5], cache)]
    parts += [model.forward_cached(idx[:, t : t + 1], cache) for t in range(5, CFG.block_size)]
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-4)
    last, _ = model(idx, last_only=True)
    assert torch.allclose(last, full[:, -1:], atol=1e-5)
    shown, _, _ = model(idx, return_attention=True)  # the written-out attention computes what the fused kernel does
    assert torch.allclose(shown, full, atol=1e-4)


def test_rotary_scores_depend_only_on_the_distance() -> None:
    from engine.transform.rotary import apply_rotary, rotary_tables

    cos, sin = rotary_tables(16, 8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    at = lambda x, t: apply_rotary(x.expand(1, 1, 16, 8), cos, sin)[0, 0, t]  # noqa: E731 - x rotated to position t
    assert torch.allclose(at(q, 5) @ at(k, 3), at(q, 12) @ at(k, 10), atol=1e-5)


def test_padded_vocabulary_is_invisible_to_callers() -> None:
    from dataclasses import replace

    torch.manual_seed(0)
    model = GPT(replace(CFG, vocab_multiple=64))
    assert model.transformer.wte.weight.shape == (64, CFG.n_embd)
    idx = torch.randint(0, CFG.vocab_size, (2, 5))
    logits, loss = model(idx, targets=idx)
    assert logits.shape == (2, 5, CFG.vocab_size) and loss is not None
    assert model.generate(idx, 3).max() < CFG.vocab_size


def test_saved_model_configs_load_and_dropped_options_are_refused() -> None:
    """A checkpoint's model_config from when the dropped options existed holds them, off: it loads (unknown keys
    ignored). One that turned an option on would build a different model from its weights: refused, by name."""
    old = {"block_size": 16, "vocab_size": 11, "n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0, "bias": False,
           "mlp_act": "gelu", "zero_init_proj": True, "qk_norm": False, "rope": False, "logit_softcap": 0.0,
           "attn_scale": 0.0, "vocab_multiple": 1, "added_later": "ignored"}
    assert GPTConfig.from_dict(old) == GPTConfig(**{k: old[k] for k in ("block_size", "vocab_size", "n_layer",
                                                                         "n_head", "n_embd", "vocab_multiple")})
    for used in ({"mlp_act": "relu2"}, {"logit_softcap": 10.0}, {"attn_scale": 0.5}):
        with pytest.raises(ValueError, match=f"{next(iter(used))}=.*measured and dropped"):
            GPTConfig.from_dict({**old, **used})


def test_attention_runs_in_float32_under_cpu_bf16_autocast(monkeypatch) -> None:
    # CPU autocast would cast the fused kernel's float32 inputs back to bf16, whose CPU backward is ~4x slower
    import engine.transform.model as model_module

    seen: list[torch.dtype] = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        out = real(q, k, v, **kwargs)
        seen.append(out.dtype)  # the kernel's own result: its inputs' dtype unless autocast changed them
        return out

    monkeypatch.setattr(model_module.F, "scaled_dot_product_attention", spy)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16, qk_norm=True, rope=True))
    idx = torch.randint(0, 11, (2, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, idx)
    assert seen == [torch.float32] and logits.dtype == torch.bfloat16
    loss.backward()  # the gradient flows through the float32 island
    seen.clear()
    model(idx)  # no autocast: float32 throughout, nothing switched
    assert seen == [torch.float32]
