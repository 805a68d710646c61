"""Rotary position embeddings (Su et al. 2021, "RoFormer"): each query and key turned by an angle set by its position.

Why: after the rotation the score of a query and a key depends on how far apart they are, not on where they
are, so attention gets relative positions from the first step instead of learning them from the position table.
The model's attention (engine.transform.model.CausalSelfAttention) applies it with `rope=True`, after QK-norm and
before the scores; it adds no parameter, only two small tables per layer.

Shapes in comments: B = batch size, nh = n_head, T = positions, hs = head size.
"""

from __future__ import annotations

import torch


def rotary_tables(block_size: int, head_size: int, base: float = 10_000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (block_size, head_size) of each position's rotation angles (Su et al. 2021), laid out
    for `apply_rotary`: cos twice, then -sin and sin (one table per half of a head vector).

    Pair i of a query or key at position t is turned by t * base^(-2i / head_size): a query and a key then score
    by how far apart they are, not where they are.
    """
    inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (hs/2,)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # (T, hs/2)
    cos, sin = angles.cos(), angles.sin()  # (T, hs/2) each
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)  # (T, hs) each


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Rotate each pair (x1[i], x2[i]) of the two halves of every (B, nh, T, hs) head vector by its position's
    angle (positions start, start + 1, ...): x1 cos - x2 sin, x1 sin + x2 cos, as four whole-tensor operations.

    >>> cos, sin = rotary_tables(4, 2)
    >>> x = torch.tensor([[[[1.0, 0.0]] * 4]])  # (1, 1, 4, 2): the same vector at positions 0..3
    >>> [round(v, 3) for v in apply_rotary(x, cos, sin)[0, 0, :, 1].tolist()]  # turned by 0, 1, 2, 3 radians
    [0.0, 0.841, 0.909, 0.141]
    """
    T = x.size(-2)
    c, s = cos[start : start + T].to(x.dtype), sin[start : start + T].to(x.dtype)  # (T, hs) each
    swapped = x.roll(x.size(-1) // 2, dims=-1)  # (B, nh, T, hs): the halves swapped, (x2, x1)
    return x * c + swapped * s  # (B, nh, T, hs)
