"""Gradient accumulation, shown on a real batch: k small batches, their gradients added up, give the gradient of
one big batch.

The loss of a batch is the mean over its B·T predictions, so its gradient is the mean of their gradients. Split the
batch into k micro-batches of B/k sequences: each micro-batch's loss is the mean over its own predictions, and the
sum of (micro-batch loss ÷ k) over the k of them is the whole batch's mean again. Backpropagating each term adds its
gradient into the same `.grad` tensors (PyTorch accumulates unless told to zero them), so after k backward passes the
gradients equal the big batch's, up to float rounding. Only one micro-batch's activations are alive at a time: a run
that cannot hold B sequences' activations still trains with batch B, k passes per optimizer step, k times slower.

Forget the ÷ k and the sum is k times the mean: the same direction, k times as long. Plain gradient descent would
take a step k times too long; Adam and Muon, which scale each step by the gradient's own size, mostly absorb it, but
gradient clipping, which looks at the length, would see a gradient k times longer. `accumulate` measures that too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.transform.model import GPT


@dataclass(frozen=True)
class Accumulation:
    batch: int  # sequences per optimizer step
    micro: int  # sequences per backward pass
    passes: int  # backward passes per optimizer step: batch // micro
    tokens: int  # predictions per optimizer step: batch × block
    loss: float  # the whole batch's loss, one pass
    micro_losses: list[float]  # each micro-batch's loss; their mean is `loss`
    grad_norm: float  # the whole batch's gradient, its length
    max_difference: float  # largest |accumulated − whole-batch| over every gradient entry
    relative_difference: float  # that, over the largest whole-batch entry
    unscaled_ratio: float  # |gradient accumulated without ÷ k| / |whole-batch gradient|: k


def _gradients(model: GPT) -> torch.Tensor:
    """Every parameter's gradient, flattened into one vector (a tied matrix once)."""
    return torch.cat([p.grad.detach().flatten() for p in model.parameters() if p.grad is not None])  # (N,)


def accumulate(model: GPT, x: torch.Tensor, y: torch.Tensor, micro: int) -> Accumulation:
    """Show-me function: the gradient of batch (x, y) in one pass, then accumulated over micro-batches of `micro`
    sequences (each loss ÷ k), and accumulated without the ÷ k. The model's weights are not changed; its gradients
    are cleared afterwards. `x`, `y`: (B, T) inputs and targets, B divisible by `micro`.

    >>> from engine.transform.model import GPTConfig
    >>> _ = torch.manual_seed(0); model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=11))
    >>> x = torch.randint(0, 11, (8, 8)); a = accumulate(model, x, torch.roll(x, -1, 1), micro=2)
    >>> a.passes, a.tokens, a.relative_difference < 1e-5, round(a.unscaled_ratio, 3)
    (4, 64, True, 4.0)
    """
    B, T = x.shape
    if micro < 1 or B % micro:
        raise ValueError(f"a batch of {B} sequences does not split into micro-batches of {micro}")
    k = B // micro
    was_training = model.training
    model.eval()  # no dropout: the two ways must see the same network
    try:
        model.zero_grad(set_to_none=True)
        _, loss = model(x, y)  # mean over all B·T predictions
        loss.backward()
        whole = _gradients(model)  # (N,)

        model.zero_grad(set_to_none=True)
        micro_losses = []
        for i in range(k):  # one micro-batch's activations alive at a time
            _, part = model(x[i * micro:(i + 1) * micro], y[i * micro:(i + 1) * micro])
            (part / k).backward()  # .grad adds up across the k passes
            micro_losses.append(float(part.detach()))
        accumulated = _gradients(model)  # (N,)

        model.zero_grad(set_to_none=True)
        for i in range(k):
            _, part = model(x[i * micro:(i + 1) * micro], y[i * micro:(i + 1) * micro])
            part.backward()  # the ÷ k forgotten
        unscaled = _gradients(model)  # (N,)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    difference = float((accumulated - whole).abs().max())
    return Accumulation(
        batch=B, micro=micro, passes=k, tokens=B * T, loss=float(loss.detach()), micro_losses=micro_losses,
        grad_norm=float(whole.norm()), max_difference=difference,
        relative_difference=difference / max(float(whole.abs().max()), 1e-30),
        unscaled_ratio=float(unscaled.norm() / whole.norm()),
    )
