"""Why the MLP needs its non-linearity (lesson 6): one block's real MLP run with and without its GELU, as plain data.

A block's MLP widens each position's vector 4x (`c_fc`), bends every one of those numbers with GELU (Hendrycks &
Gimpel 2016), and projects back (`c_proj`); engine/transform/model.py's `MLP.forward`. Take away the bend and the two
matrices collapse into one, W = c_proj.weight @ c_fc.weight of shape (C, C): 8·C² parameters doing what C² could,
and stacking any number of such layers still gives one matrix. A matrix always adds up, W(a + b) = Wa + Wb; with
the bend, mlp(a + b) is not mlp(a) + mlp(b), so no single matrix can stand in for it. `mlp_bend` measures both
on two real vectors of the learner's prompt (what arrives at that block's MLP, after attention and `ln_2`).
With biases (GPTConfig.bias) the collapsed map is a matrix plus one fixed vector (its answer for 0); the comparison
then subtracts mlp(0) once, since mlp(a) + mlp(b) counts the fixed part twice (mlp(a + b) - mlp(0) against
(mlp(a) - mlp(0)) + (mlp(b) - mlp(0))). Without biases mlp(0) is exactly 0 and the test is the plain one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.look_inside.sampling import display_text, encode_prompt, eval_mode
from engine.transform.model import GPT, MLP
from engine.transform.tokenization import Tokenizer


@dataclass(frozen=True)
class Additivity:
    """mlp(a) + mlp(b) against mlp(a + b) for one version of the MLP (with the bend, or without it)."""

    parts: list[float]  # mlp(a) + mlp(b) - mlp(0): what adding up predicts, C numbers (mlp(0) = 0 without biases)
    joint: list[float]  # mlp(a + b) - mlp(0): what the MLP really gives for a + b, C numbers
    gap: float  # length of joint - parts: 0 for a map that adds up
    size: float  # length of parts, so the gap can be read as a share of it

    @property
    def share(self) -> float:
        """The gap as a fraction of what adding up predicts.

        >>> Additivity([3.0, 4.0], [3.0, 4.0], 0.5, 5.0).share
        0.1
        """
        return self.gap / self.size if self.size else 0.0


@dataclass(frozen=True)
class MlpBend:
    """One block's MLP on two positions `a` and `b` of a prompt, with its GELU and without it."""

    tokens: list[str]  # the prompt's tokens as display text
    dropped: int  # tokens cut from the front (the model sees block_size at most)
    layer: int  # 0-based block index
    n_layer: int
    a: int  # the two positions compared
    b: int
    n_embd: int  # C: numbers in the vector going in and coming out
    n_hidden: int  # 4C: numbers the MLP widens to, each bent by GELU
    bias: bool  # the model's layers add a fixed vector too
    curve: list[tuple[float, float]]  # (x, GELU(x)) on a grid wide enough to hold every dot
    hidden_a: list[float]  # c_fc(a): the 4C numbers at position a that go into GELU
    bent_a: list[float]  # GELU(c_fc(a)): what comes out of the bend for each of them
    on_a: int  # of them, how many sit on GELU's rising side (> 0): passed on almost as they are
    on_b: int  # the same for position b
    split: int  # hidden units where a and b sit on opposite sides of the bend (one on, the other off)
    gelu_floor: float  # the lowest GELU output on the curve: the flat side squeezes everything to [floor, 0]
    bent: Additivity  # the real MLP: c_proj(GELU(c_fc(x)))
    straight: Additivity  # the bend removed: c_proj(c_fc(x))
    collapse_diff: float  # max |W x + w0 - c_proj(c_fc(x))| over every position of the prompt: float rounding
    collapse_rank: int  # rank of W: at most C, whatever the 4C in between
    two_layer_params: int  # parameters of c_fc and c_proj (weights and biases)
    one_matrix_params: int  # parameters of W (and its fixed vector w0): what the two collapse into


def prompt_tokens(tokenizer: Tokenizer, prompt: str, block_size: int) -> tuple[list[str], int]:
    """The prompt's tokens as display text, cut to the last `block_size`, and how many were cut: what a widget
    offers as positions to pick before running the model.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> prompt_tokens(CharTokenizer.from_text("ab c"), "a b c", block_size=4)
    (['␣', 'b', '␣', 'c'], 1)
    """
    ids, dropped = encode_prompt(tokenizer, prompt, block_size)
    return [display_text(tokenizer, i) for i in ids], dropped


def mlp_inputs(model: GPT, idx: torch.Tensor, layer: int) -> torch.Tensor:
    """What block `layer`'s MLP reads at every position, (T, C): GPT.forward up to that block, then Block.forward
    up to its MLP (attention added onto the residual stream, then ln_2). Call under `eval_mode`."""
    T = idx.size(1)
    pos = torch.arange(0, T, dtype=torch.long, device=idx.device)  # (T,)
    x = model.transformer.drop(model.transformer.wte(idx) + model.transformer.wpe(pos))  # (1, T, C)
    for block in model.transformer.h[:layer]:
        x, _ = block(x)  # (1, T, C)
    block = model.transformer.h[layer]
    x = x + block.attn(block.ln_1(x))[0]  # (1, T, C)
    return block.ln_2(x)[0]  # (1, T, C) -> (T, C)


def _straight(mlp: MLP, x: torch.Tensor) -> torch.Tensor:
    """The MLP with its GELU taken out: widen, then project back, nothing in between. (..., C) -> (..., C)."""
    return mlp.c_proj(mlp.c_fc(x))  # (..., C) -> (..., 4C) -> (..., C)


def _additivity(f, a: torch.Tensor, b: torch.Tensor) -> Additivity:
    """Does f add up on a and b? Compares f(a + b) with f(a) + f(b), both measured from f(0)."""
    zero = f(torch.zeros_like(a))  # (C,): 0 without biases
    parts = f(a) + f(b) - 2 * zero  # (C,)
    joint = f(a + b) - zero  # (C,)
    return Additivity(parts.tolist(), joint.tolist(), float((joint - parts).norm()), float(parts.norm()))


def gelu_curve(gelu: torch.nn.Module, low: float = -4.0, high: float = 4.0, points: int = 161) -> list[tuple[float, float]]:
    """(x, GELU(x)) on an even grid from `low` to `high`, computed by the module itself.

    >>> curve = gelu_curve(torch.nn.GELU(), -4, 4, 9)
    >>> [(x, round(y, 2)) for x, y in curve[::4]]  # flat far left, bent near 0, straight far right
    [(-4.0, -0.0), (0.0, 0.0), (4.0, 4.0)]
    """
    xs = torch.linspace(low, high, points)  # (points,)
    with torch.no_grad():
        ys = gelu(xs)  # (points,)
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def mlp_bend(model: GPT, tokenizer: Tokenizer, prompt: str, layer: int, a: int, b: int) -> MlpBend:
    """Show-me function: block `layer`'s MLP (0-based) on the vectors at positions `a` and `b` of the prompt, with
    its GELU and without it.

    Why: without the bend the MLP is one matrix in disguise, and adding up (mlp(a + b) = mlp(a) + mlp(b)) holds
    up to float rounding; with it, the gap is a real share of the output, which no matrix can produce. Positions
    outside the prompt are moved to its nearest end.
    """
    ids, dropped = encode_prompt(tokenizer, prompt, model.config.block_size)  # ValueError if there are none
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    T, C = len(ids), model.config.n_embd
    a, b = (min(max(p, 0), T - 1) for p in (a, b))
    with eval_mode(model):
        mlp = model.transformer.h[layer].mlp
        x = mlp_inputs(model, idx, layer)  # (T, C)
        va, vb = x[a], x[b]  # (C,) each
        bent = _additivity(mlp, va, vb)  # the block's own MLP.forward: c_proj(GELU(c_fc(x)))
        straight = _additivity(lambda v: _straight(mlp, v), va, vb)
        # Without the bend: x -> c_proj(c_fc(x)) is x -> W x + w0, one (C, C) matrix and one fixed vector.
        W = mlp.c_proj.weight @ mlp.c_fc.weight  # (C, 4C) @ (4C, C) -> (C, C)
        w0 = _straight(mlp, torch.zeros(C, device=device))  # (C,): c_proj(c_fc.bias) + c_proj.bias, or 0
        collapsed = x @ W.T + w0  # (T, C)
        collapse_diff = float((collapsed - _straight(mlp, x)).abs().max())
        hidden_a, hidden_b = mlp.c_fc(va), mlp.c_fc(vb)  # (4C,) each: the numbers GELU bends
        low = min(-4.0, float(hidden_a.min()) - 0.5)
        high = max(4.0, float(hidden_a.max()) + 0.5)
        curve = gelu_curve(mlp.gelu, low, high)
        rank = int(torch.linalg.matrix_rank(W.float().cpu()))
    layers = (mlp.c_fc, mlp.c_proj)
    two = sum(p.numel() for m in layers for p in m.parameters())
    one = W.numel() + (C if model.config.bias else 0)
    return MlpBend(
        tokens=[display_text(tokenizer, i) for i in ids], dropped=dropped, layer=layer, n_layer=model.config.n_layer,
        a=a, b=b, n_embd=C, n_hidden=mlp.c_fc.out_features, bias=model.config.bias, curve=curve,
        hidden_a=hidden_a.tolist(), bent_a=mlp.gelu(hidden_a).tolist(), on_a=int((hidden_a > 0).sum()), on_b=int((hidden_b > 0).sum()),
        split=int(((hidden_a > 0) != (hidden_b > 0)).sum()), gelu_floor=min(y for _, y in curve),
        bent=bent, straight=straight, collapse_diff=collapse_diff, collapse_rank=rank,
        two_layer_params=two, one_matrix_params=one,
    )
