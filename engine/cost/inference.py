"""What generating text costs (lesson 8): the prompt's prefill, then decode one token at a time, with and without
the key-value cache, timed on a real model, with the arithmetic and the memory traffic of each step counted.

A server answering a prompt does two different jobs. The **prefill** reads the whole prompt in one forward pass
(every position at once: big matrix products). **Decode** then writes one token per forward pass, each needing the
one before it. With the cache (engine.transform.kv_cache, `GPT.forward_cached`) a decode step computes one
position; without it the model re-reads the whole text for every token. A forward pass costs about 2N FLOPs per
position, N the parameters outside the embeddings (Kaplan et al. 2020, "Scaling Laws for Neural Language Models",
Table 1), plus attention over the context (4 x n_layer x n_embd per key: scores and weighted sum, one third of the
training count in engine.cost.flops, as PaLM's appendix B counts it). At batch 1 a decode step reads every weight
once for 2 FLOPs per weight, so it does about 2 / bytes-per-weight FLOPs per byte it reads: far less than a chip's
arithmetic could keep up with, which is why decoding is limited by memory, not arithmetic (Pope et al. 2022,
"Efficiently Scaling Transformer Inference").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.cost.flops import count_parameters
from engine.look_inside.sampling import eval_mode, reading_window
from engine.transform.kv_cache import KVCache, generation_window
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import Tokenizer


def forward_flops(config: GPTConfig, new: int, keys_before: int) -> int:
    """FLOPs of one forward pass over `new` positions that follow `keys_before` positions already read (0: no
    cache, the whole text is `new`), the output head on the last position only (all that picking a token needs).

    Each position: 2N for its matrix products (N = parameters outside the embeddings), 4 x n_layer x n_embd per key
    it attends to (itself and every earlier position). One position over a full context is a third of
    engine.cost.flops's training count (forward only, no backward):

    >>> from engine.cost.flops import flops_per_token
    >>> cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65)
    >>> 3 * forward_flops(cfg, new=1, keys_before=15) == flops_per_token(cfg).total
    True
    >>> forward_flops(cfg, new=3, keys_before=0) - 3 * 2 * count_parameters(cfg).non_embedding  # head + attention
    5696
    """
    dense = 2 * count_parameters(config).non_embedding * new
    keys = sum(keys_before + j + 1 for j in range(new))  # position keys_before + j sees keys 0 .. keys_before + j
    attention = 4 * config.n_layer * config.n_embd * keys
    head = 2 * config.n_embd * config.vocab_size
    return dense + attention + head


def weights_read(model: GPT) -> int:
    """Weights a forward pass reads at least once: every parameter but the position table, of which it reads one row
    per position (the token table is read whole, as the output head it is tied to).

    >>> weights_read(GPT(GPTConfig(n_layer=1, n_head=1, n_embd=4, block_size=2, vocab_size=3)))  # 224 - 2 x 4 + 4
    220
    """
    position = model.transformer.wpe.weight
    return sum(p.numel() for p in model.parameters()) - position.numel() + position.size(1)


@dataclass(frozen=True)
class InferenceCost:
    """One prompt generated from twice, with and without the cache: the same tokens, timed and counted.

    Lists run over the decode steps: the prefill writes the first new token, each step one more after it.
    """

    prompt_tokens: int  # tokens the prefill read (the window the model reads: at most block_size)
    dropped: int  # prompt tokens cut from the front
    new_tokens: int  # tokens written: the prefill's one, then len(cached_s) decode steps
    text: str  # what the model wrote (with the cache)
    same_tokens: bool  # the uncached run wrote exactly the same tokens
    prefill_s: float  # one forward over the prompt, with its cache built
    cached_s: list[float]  # per decode step, with the cache
    uncached_s: list[float]  # per decode step, the whole window read again
    context: list[int]  # tokens the model reads at each step (grows to block_size, then the window slides)
    computed: list[int]  # positions the cached step computes: 1, or the window when the cache was rebuilt
    flops_cached: list[int]
    flops_uncached: list[int]
    prefill_flops: int
    parameters: int  # N: parameters outside the embeddings
    weights: int  # weights read per forward pass (`weights_read`)
    bytes_per_weight: int  # in the dtype the model runs in
    dtype: str
    n_layer: int
    n_embd: int
    block_size: int
    rounds: int  # every time is the fastest of this many runs
    threads: int  # torch CPU threads while timing
    device: str

    @property
    def steps(self) -> int:
        return len(self.cached_s)

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_s

    @property
    def cached_tokens_per_s(self) -> float:
        return self.steps / sum(self.cached_s)

    @property
    def uncached_tokens_per_s(self) -> float:
        return self.steps / sum(self.uncached_s)

    @property
    def speedup(self) -> float:
        """How many times longer the decode steps took without the cache."""
        return sum(self.uncached_s) / sum(self.cached_s)

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights one forward pass reads: at batch 1, per decoded token."""
        return self.weights * self.bytes_per_weight

    @property
    def one_position_steps(self) -> list[int]:
        """The decode steps that computed one position (not a rebuild of the cache): the typical step."""
        return [i for i, n in enumerate(self.computed) if n == 1] or list(range(self.steps))

    @property
    def decode_flops(self) -> float:
        """FLOPs of a typical decode step (one position over the cache), averaged over the steps."""
        steps = self.one_position_steps
        return sum(self.flops_cached[i] for i in steps) / len(steps)

    @property
    def cache_bytes(self) -> float:
        """Bytes of cached keys and values a typical decode step reads, averaged over the steps."""
        steps = self.one_position_steps
        per_key = 2 * self.n_layer * self.n_embd * self.bytes_per_weight  # a key and a value in every layer
        return sum(self.context[i] for i in steps) / len(steps) * per_key

    @property
    def decode_intensity(self) -> float:
        """FLOPs per byte read in a decode step: about 2 per weight over the bytes that weight takes."""
        return self.decode_flops / (self.weight_bytes + self.cache_bytes)

    @property
    def prefill_intensity(self) -> float:
        """FLOPs per byte of weights in the prefill: every weight read once serves every prompt position."""
        return self.prefill_flops / self.weight_bytes


def inference_cost(model: GPT, tokenizer: Tokenizer, prompt: str, new_tokens: int, seed: int = 0,
                   rounds: int = 3) -> InferenceCost:
    """Show-me function: time the prefill and `new_tokens` - 1 decode steps with the cache and without it.

    Both ways draw from the same seeded generator (temperature 1), so they write the same tokens unless float
    rounding tips a draw (`same_tokens` says). One warm-up run first (allocations, kernel choice), then `rounds`
    timed runs: each time is the fastest run's, the time the work takes when the rest of the machine leaves it
    alone. One torch thread, in evaluation mode and inference mode, as every show-me function runs.
    """
    if new_tokens < 2:
        raise ValueError(f"new_tokens must be at least 2 (the prefill's token and one decode step), not {new_tokens}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    config = model.config
    ids, dropped = reading_window(tokenizer, prompt, config.block_size)
    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with eval_mode(model), torch.inference_mode():
        threads = torch.get_num_threads()
        _generate(model, ids, min(new_tokens, 4), seed, True, sync)  # warm-up
        _generate(model, ids, min(new_tokens, 4), seed, False, sync)
        cached, uncached = [], []
        for _ in range(rounds):  # taken in turns, so a busy spell on the machine falls on both ways alike
            cached.append(_generate(model, ids, new_tokens, seed, True, sync))
            uncached.append(_generate(model, ids, new_tokens, seed, False, sync))
    tokens, _, computed = cached[0]
    fastest = [min(run[1][i] for run in cached) for i in range(new_tokens)]  # (new_tokens,): prefill, then steps
    fastest_uncached = [min(run[1][i] for run in uncached) for i in range(1, new_tokens)]
    lengths = [len(ids) + i for i in range(1, new_tokens)]  # text so far at each decode step
    context = [generation_window(n, config.block_size) for n in lengths]
    flops_cached = [forward_flops(config, c, w - c) for c, w in zip(computed[1:], context, strict=True)]
    flops_uncached = [forward_flops(config, w, 0) for w in context]
    weight = next(model.parameters())
    return InferenceCost(
        prompt_tokens=len(ids), dropped=dropped, new_tokens=new_tokens, text=tokenizer.decode(tokens),
        same_tokens=all(run[0] == tokens for run in cached + uncached), prefill_s=fastest[0], cached_s=fastest[1:],
        uncached_s=fastest_uncached, context=context, computed=computed[1:], flops_cached=flops_cached,
        flops_uncached=flops_uncached, prefill_flops=forward_flops(config, len(ids), 0),
        parameters=count_parameters(config).non_embedding, weights=weights_read(model),
        bytes_per_weight=weight.element_size(), dtype=str(weight.dtype).removeprefix("torch."),
        n_layer=config.n_layer, n_embd=config.n_embd, block_size=config.block_size, rounds=rounds, threads=threads,
        device=device.type,
    )


def _generate(model: GPT, prompt: list[int], new_tokens: int, seed: int, use_cache: bool,
              sync: Callable[[], None]) -> tuple[list[int], list[float], list[int]]:
    """Write `new_tokens` tokens after `prompt`; returns them, the seconds each took (the first: the prefill) and
    the positions each forward pass computed. With the cache, a step feeds in only the token just written, except
    when the window drops its oldest quarter (`generation_window`) and the cache is built again over the rest;
    without it, every step reads the whole window from scratch."""
    block = model.config.block_size
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    ids, out, seconds, computed = list(prompt), [], [], []
    cache: KVCache | None = None
    pending = list(prompt)  # tokens not yet in the cache
    for _ in range(new_tokens):
        window = generation_window(len(ids), block)
        start = time.perf_counter()
        if not use_cache:
            feed = ids[-window:]
            logits, _ = model(torch.tensor([feed], device=device), last_only=True)  # (1, 1, V)
        else:
            if cache is None or cache.length + len(pending) != window:
                cache, pending = KVCache(model.config.n_layer), ids[-window:]  # positions restart at 0
            feed = pending
            logits = model.forward_cached(torch.tensor([feed], device=device), cache, last_only=True)  # (1, 1, V)
        probs = F.softmax(logits[0, -1].float().cpu(), dim=-1)  # (V,)
        token = int(torch.multinomial(probs, 1, generator=generator))
        sync()
        seconds.append(time.perf_counter() - start)
        computed.append(len(feed))
        ids.append(token)
        out.append(token)
        pending = [token]
    return out, seconds, computed
