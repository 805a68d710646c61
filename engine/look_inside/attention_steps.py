"""One attention computation with its numbers (lesson 6): one head, one query position, every step written out.

Why: the attention heatmap shows the weights a head computes; this shows where one row of them comes from, so a
learner can follow every number: the head's query q and keys k (made from the block's input exactly as
`engine.transform.model.CausalSelfAttention.forward` makes them: `c_attn`, cut into heads, QK-norm and rotary
positions when the model uses them), the dot products q·k, the scale 1/√hs, the causal mask, the softmax
(e^score over the sum), and the weighted sum of the values (Vaswani et al. 2017, "Attention Is All You Need",
eq. 1, for one row). The arithmetic after q, k and v is done in float64 so the shown numbers agree with each other;
the result is checked against the model's own attention map and its own head output (read from its forward pass).

Shapes in comments: T = prompt length, C = n_embd, nh = n_head, hs = head size = C // nh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.look_inside.sampling import display_text, encode_prompt, eval_mode
from engine.transform.model import GPT, attention_maps
from engine.transform.rotary import apply_rotary
from engine.transform.tokenization import Tokenizer

TOLERANCE = 1e-5  # how close the step-by-step numbers must come to the model's own to count as the same


@dataclass(frozen=True)
class KeyStep:
    """One key position as the query sees it. Positions after the query are masked: their numbers are None and
    their weight is exactly 0."""

    position: int
    token: str
    masked: bool  # a later position: switched off before the softmax
    key: list[float] | None  # (hs,) this position's key for the head
    value: list[float] | None  # (hs,) this position's value for the head
    dot: float | None  # q·k: the key and the query multiplied number by number, then summed
    score: float | None  # dot / √hs
    exp: float | None  # e^score
    weight: float  # exp / (sum of exp over the allowed positions); 0 when masked


@dataclass(frozen=True)
class AttentionSteps:
    """One head's attention for one query position, step by step, and whether it matches the model's own numbers."""

    tokens: list[str]  # the prompt's tokens as shown (whitespace made visible)
    dropped: int  # tokens cut from the front (at most `max_tokens`, and block_size, are used)
    layer: int  # counting from 0
    head: int  # counting from 0
    query_pos: int
    head_size: int  # hs: the length of q, k and v
    qk_norm: bool  # q and k scaled to the same length (RMS norm) before the match
    rope: bool  # q and k rotated by their positions before the match
    query: list[float]  # (hs,)
    keys: list[KeyStep]  # one per position of the prompt, the masked later ones included
    exp_sum: float  # the softmax's denominator
    output: list[float]  # (hs,) sum of weight × value: the head's output at the query position
    model_weights: list[float]  # the model's own attention row for this head (the heatmap's row)
    model_output: list[float]  # (hs,) the model's own head output at this position, from its forward pass
    weights_gap: float  # largest |our weight - model's weight|
    output_gap: float  # largest |our output - model's output|

    @property
    def scale(self) -> float:
        """1/√hs, the factor every dot product is multiplied by."""
        return 1.0 / math.sqrt(self.head_size)

    @property
    def weights(self) -> list[float]:
        return [k.weight for k in self.keys]

    @property
    def matches(self) -> bool:
        """True when the weights equal the heatmap's row, and the output the model's, to TOLERANCE."""
        return self.weights_gap <= TOLERANCE and self.output_gap <= TOLERANCE


def softmax_steps(scores: list[float]) -> tuple[list[float], float, list[float]]:
    """The softmax written out as the lesson teaches it: e^score for each, their sum, and each e^score / sum.

    >>> exps, total, weights = softmax_steps([2.0, 1.0, 0.0])
    >>> round(total, 3), [round(w, 2) for w in weights]
    (11.107, [0.67, 0.24, 0.09])
    """
    exps = [math.exp(s) for s in scores]
    total = math.fsum(exps)
    return exps, total, [e / total for e in exps]


def _head_qkv(model: GPT, idx: torch.Tensor, layer: int, head: int) -> tuple[torch.Tensor, ...]:
    """The head's q, k, v for every position (T, hs) each, computed as the model computes them."""
    C, nh = model.config.n_embd, model.config.n_head
    hs = C // nh
    T = idx.size(1)
    pos = torch.arange(0, T, dtype=torch.long, device=idx.device)  # (T,)
    x = model.transformer.drop(model.transformer.wte(idx) + model.transformer.wpe(pos))  # (1, T, C)
    for block in model.transformer.h[:layer]:  # the blocks before the chosen one, as GPT.forward runs them
        x, _ = block(x)  # (1, T, C)
    block = model.transformer.h[layer]
    attn = block.attn
    q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=2)  # the block's attention reads ln_1(x): 3 x (1, T, C)
    q, k, v = (t.view(1, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (1, T, C) -> (1, nh, T, hs)
    if attn.qk_norm:
        q, k = F.rms_norm(q, (hs,)), F.rms_norm(k, (hs,))  # (1, nh, T, hs) each
    if attn.rope:
        q = apply_rotary(q, attn.rope_cos, attn.rope_sin)  # (1, nh, T, hs)
        k = apply_rotary(k, attn.rope_cos, attn.rope_sin)  # (1, nh, T, hs)
    return q[0, head], k[0, head], v[0, head]  # (T, hs) each


def _model_head_output(model: GPT, idx: torch.Tensor, layer: int) -> torch.Tensor:
    """The heads' outputs laid end to end (T, C), as the model's own forward pass computes them (its fused kernel):
    caught on their way into the output projection `c_proj`."""
    caught: list[torch.Tensor] = []
    hook = model.transformer.h[layer].attn.c_proj.register_forward_hook(lambda _m, inp, _out: caught.append(inp[0]))
    try:
        model(idx)
    finally:
        hook.remove()
    return caught[0][0]  # (1, T, C) -> (T, C)


def attention_steps(
    model: GPT, tokenizer: Tokenizer, prompt: str, layer: int, head: int, query_pos: int | None = None,
    max_tokens: int | None = None,
) -> AttentionSteps:
    """Show-me function: head `head` of layer `layer` (both from 0) computing its output for position `query_pos`
    (default: the last) of the prompt, one step at a time, checked against the model's own numbers.

    The prompt keeps its last `max_tokens` tokens (and never more than block_size): a worked example is read row by
    row, so it stays short. Raises ValueError for a layer, head or position the model or prompt does not have.
    """
    c = model.config
    if not 0 <= layer < c.n_layer or not 0 <= head < c.n_head:
        raise ValueError(f"the model has {c.n_layer} layers of {c.n_head} heads; got layer {layer}, head {head}")
    window = c.block_size if max_tokens is None else max(1, min(max_tokens, c.block_size))
    ids, dropped = encode_prompt(tokenizer, prompt, window)
    T = len(ids)
    query_pos = T - 1 if query_pos is None else query_pos
    if not 0 <= query_pos < T:
        raise ValueError(f"the prompt has {T} tokens (positions 0 to {T - 1}); got position {query_pos}")
    hs = c.n_embd // c.n_head
    idx = torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device)  # (1, T)
    with eval_mode(model):
        q, k, v = (t.double().cpu() for t in _head_qkv(model, idx, layer, head))  # (T, hs) each, float64
        model_row = attention_maps(model, idx)[layer][head][query_pos]  # (T,): the heatmap's row
        model_out = _model_head_output(model, idx, layer)[query_pos, head * hs : (head + 1) * hs]  # (hs,)

    seen = query_pos + 1  # the query may look at positions 0 .. query_pos
    dots = (k[:seen] @ q[query_pos]).tolist()  # (seen, hs) @ (hs,) -> (seen,)
    scores = [d / math.sqrt(hs) for d in dots]
    exps, total, weights = softmax_steps(scores)
    output = torch.tensor(weights, dtype=torch.float64) @ v[:seen]  # (seen,) @ (seen, hs) -> (hs,)

    tokens = [display_text(tokenizer, i) for i in ids]
    keys = [KeyStep(j, tokens[j], False, k[j].tolist(), v[j].tolist(), dots[j], scores[j], exps[j], weights[j])
            for j in range(seen)]
    keys += [KeyStep(j, tokens[j], True, None, None, None, None, None, 0.0) for j in range(seen, T)]
    model_out = model_out.double().cpu()
    return AttentionSteps(
        tokens=tokens, dropped=dropped, layer=layer, head=head, query_pos=query_pos, head_size=hs,
        qk_norm=c.qk_norm, rope=c.rope, query=q[query_pos].tolist(), keys=keys, exp_sum=total,
        output=output.tolist(), model_weights=list(model_row), model_output=model_out.tolist(),
        weights_gap=max(abs(a.weight - b) for a, b in zip(keys, model_row, strict=True)),
        output_gap=float((output - model_out).abs().max()),
    )
