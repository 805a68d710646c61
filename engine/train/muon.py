"""Muon: momentum, then each hidden weight matrix's update orthogonalised by Newton-Schulz iterations.

The maths is torch.optim.Muon's (torch 2.9+, after Keller Jordan's Muon, kellerjordan.github.io/posts/muon):
nesterov momentum as an exponential average, the update divided by its norm, five quintic Newton-Schulz steps
(a, b, c) = (3.4445, -4.7750, 2.0315), decoupled weight decay `lr * weight_decay`, and the step scaled by
sqrt(max(1, rows / cols)); with its defaults it takes torch's steps (up to bf16 rounding). Our own copy adds three
things for the 60-second lesson run (docs/training-notes.md): matrices of one shape orthogonalised together in a
few batched matmuls (small matrices on a CPU are mostly call overhead); a fused query-key-value weight (3C, C)
orthogonalised and scaled as three (C, C) matrices, as modded-nanogpt does; and the iterations in bf16, or in
float32 on a device without native bf16 arithmetic (engine.train.prepare chooses).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import torch
from torch import Tensor

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
EPS = 1e-7


def orthogonalize(g: Tensor, steps: int = NS_STEPS, dtype: torch.dtype = torch.bfloat16) -> Tensor:
    """Newton-Schulz approximation of U V^T for a stack of matrices G = U S V^T, (n, r, c) -> (n, r, c).

    As torch.optim.Muon's, batched: wide orientation (r <= c) for the iterations, each matrix divided by its own
    Frobenius norm first so its spectral norm is at most 1. The singular values come out near 1 (0.5-1.5).

    >>> q = orthogonalize(torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(0)), dtype=torch.float32)
    >>> s = torch.linalg.svdvals(q)  # (2, 4)
    >>> bool(((s > 0.5) & (s < 1.5)).all())
    True
    """
    a, b, c = NS_COEFFICIENTS
    x = g.to(dtype)  # (n, r, c)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT  # (n, c, r): the smaller Gram matrix
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=EPS)
    for _ in range(steps):
        gram = x @ x.mT  # (n, r, r)
        update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b * gram + c * gram @ gram
        x = torch.baddbmm(x, update, x, beta=a)  # a * x + update @ x
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    """Muon for 2-D weights. `splits`: for some parameters, into how many row blocks each is cut before it is
    orthogonalised (3 for a fused (3C, C) query-key-value weight); `ns_dtype`: the iterations' precision;
    `batched`: stack same-shape matrices (False: one at a time, as torch.optim.Muon)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = NS_STEPS, ns_dtype: torch.dtype = torch.bfloat16,
                 splits: dict[Tensor, int] | None = None, batched: bool = True):
        params = list(params)
        if any(p.dim() != 2 for p in params):
            raise ValueError("Muon only takes 2-D parameters (weight matrices)")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov))
        self.ns_steps, self.ns_dtype, self.batched = ns_steps, ns_dtype, batched
        self._splits = {id(p): n for p, n in (splits or {}).items()}
        for p in params:
            n = self._splits.get(id(p), 1)
            if p.size(0) % n:
                raise ValueError(f"a ({p.size(0)}, {p.size(1)}) weight cannot be cut into {n} row blocks")

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch.optim's signature
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                bufs.append(state["momentum_buffer"])
            momentum = group.get("momentum", 0.95)
            torch._foreach_lerp_(bufs, grads, 1 - momentum)  # buf = momentum * buf + (1 - momentum) * grad
            if group.get("nesterov", True):
                updates = [g.lerp(b, momentum) for g, b in zip(grads, bufs, strict=True)]
            else:
                updates = bufs
            ortho = self._orthogonalize(params, updates)
            lr, wd = group["lr"], group.get("weight_decay", 0.0)
            if wd:
                torch._foreach_mul_(params, 1 - lr * wd)
            for p, o in zip(params, ortho, strict=True):
                rows = p.size(0) // self._splits.get(id(p), 1)
                p.add_(o.to(p.dtype), alpha=-lr * math.sqrt(max(1.0, rows / p.size(1))))
        return None

    def _orthogonalize(self, params: list[Tensor], updates: list[Tensor]) -> list[Tensor]:
        """Each update (R, C) cut into its row blocks (n, R/n, C), orthogonalised (same shapes together when
        batched) and put back together."""
        blocks = [u.view(self._splits.get(id(p), 1), -1, u.size(1)) for p, u in zip(params, updates, strict=True)]
        if not self.batched:
            return [orthogonalize(b, self.ns_steps, self.ns_dtype).view_as(u) for b, u in zip(blocks, updates, strict=True)]
        by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, b in enumerate(blocks):
            by_shape[tuple(b.shape[1:])].append(i)
        out: list[Tensor | None] = [None] * len(blocks)
        for indices in by_shape.values():
            stacked = torch.cat([blocks[i] for i in indices])  # (sum of n, r, c)
            done = orthogonalize(stacked, self.ns_steps, self.ns_dtype).split([blocks[i].size(0) for i in indices])
            for i, d in zip(indices, done, strict=True):
                out[i] = d.reshape(updates[i].shape)
        return out  # type: ignore[return-value]
