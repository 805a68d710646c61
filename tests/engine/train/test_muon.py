"""engine.train.muon: the same steps as torch.optim.Muon by default; batched, split and float32 variants behave."""

from __future__ import annotations

import pytest
import torch

from engine.train.muon import Muon, orthogonalize


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(0.1 * torch.randn(*s, generator=g)) for s in [(12, 4), (4, 4), (16, 4), (4, 16), (12, 4)]]


def _run(opt_cls, params: list[torch.nn.Parameter], steps: int = 3, **kwargs) -> list[torch.Tensor]:
    opt = opt_cls(params, lr=0.02, weight_decay=0.1, **kwargs)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("batched", [False, True])
def test_same_steps_as_torch_muon(batched: bool) -> None:
    ours = _run(Muon, _params(), batched=batched)
    theirs = _run(torch.optim.Muon, _params())
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, atol=2e-3), (a - b).abs().max()


def test_split_orthogonalises_each_block_alone() -> None:
    fused = _params()[0]  # (12, 4): three (4, 4) blocks, as a fused Q, K, V weight
    grad = torch.randn(12, 4, generator=torch.Generator().manual_seed(2))
    fused.grad = grad.clone()
    before = fused.detach().clone()
    Muon([fused], lr=0.1, weight_decay=0.0, nesterov=False, momentum=0.0, splits={fused: 3}, ns_dtype=torch.float32).step()
    step = (before - fused.detach()) / 0.1  # no scaling: each (4, 4) block is square
    expected = orthogonalize(grad.view(3, 4, 4), dtype=torch.float32).reshape(12, 4)
    assert torch.allclose(step, expected, atol=1e-5)


def test_orthogonalize_float32_is_close_to_orthogonal() -> None:
    q = orthogonalize(torch.randn(3, 16, 8, generator=torch.Generator().manual_seed(0)), dtype=torch.float32)
    s = torch.linalg.svdvals(q)  # (3, 8)
    assert q.shape == (3, 16, 8) and bool(((s > 0.5) & (s < 1.5)).all())


def test_bad_splits_and_shapes_are_refused() -> None:
    p = torch.nn.Parameter(torch.zeros(10, 4))
    with pytest.raises(ValueError, match="row blocks"):
        Muon([p], splits={p: 3})
    with pytest.raises(ValueError, match="2-D"):
        Muon([torch.nn.Parameter(torch.zeros(4))])
