"""Data parallelism, shown: the same model trained by one process and by two (torchrun, gloo), side by side, and
what one step of the two does inside.

Under data parallelism every process (a rank) holds the whole model and trains it on batches of its own. After each
backward pass the ranks average their gradients (an all-reduce), so every rank takes the same optimizer step and the
weights stay the same everywhere. Two ranks of B sequences each make one step of 2·B sequences: twice the tokens per
step, for the price of one all-reduce of every gradient per step. Whether that buys speed depends on the hardware.
Two processes on one machine's two CPU cores split the cores one process had, so tokens per second barely move; with
a GPU per rank each rank brings its own compute, and the all-reduce (NCCL, over NVLink) overlaps the backward pass,
so tokens per second grow almost with the number of GPUs.

`compare` turns two runs' snapshots (engine.runs.snapshot's RunSnapshot, or anything with its fields) into the numbers a page sets side by side; `ddp_step`
does one step of a two-rank run by hand on a real model: each rank's gradient on its half of a batch, and their
average, which is the whole batch's gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from engine.number_format import count, loss, rate
from engine.transform.model import GPT

BYTES_PER_GRADIENT = 4  # float32: what DDP all-reduces per parameter (bf16 training keeps float32 gradients too)


class Run(Protocol):
    """What `compare` reads of a run: a RunSnapshot has these (engine.runs.snapshot, a later stage than this one)."""

    metrics: list[dict[str, Any]]  # per-step records: step, tokens, elapsed_s, val_loss at evaluations
    processes: int
    status: Any
    config: dict[str, Any]


@dataclass(frozen=True)
class RunSide:
    """One run of the comparison, as far as it has trained."""

    processes: int
    status: str
    tokens_per_step: int | None  # tokens in one optimizer step, all ranks together
    steps: int
    tokens: int  # tokens seen so far, all ranks together
    seconds: float  # seconds trained so far (evaluations included)
    final_loss: float | None  # the newest validation loss
    curve: list[tuple[int, float]]  # (tokens seen, validation loss) at each evaluation

    @property
    def tokens_per_s(self) -> float | None:
        """Tokens seen over seconds trained: the whole run's throughput, evaluations included."""
        return self.tokens / self.seconds if self.seconds > 0 and self.tokens else None


@dataclass(frozen=True)
class Comparison:
    one: RunSide  # the run of fewer processes (one)
    two: RunSide  # ... and of more (two)
    common_tokens: int | None  # the most tokens both runs' validation curves reach: where their losses compare fairly

    @property
    def speedup(self) -> float | None:
        """How many times the tokens per second of the one-process run the two-process run reached."""
        a, b = self.one.tokens_per_s, self.two.tokens_per_s
        return b / a if a and b else None

    def loss_at_common(self, side: RunSide) -> float | None:
        return loss_at(side.curve, self.common_tokens) if self.common_tokens is not None else None

    def rows(self) -> list[tuple[str, str, str]]:
        """(what, one process, two processes): the table a page shows."""
        sides = (self.one, self.two)
        rows = [("Processes (ranks)", *(str(s.processes) for s in sides)),
                ("Tokens per step, all ranks", *(count(s.tokens_per_step) for s in sides)),
                ("Tokens per second", *(rate(s.tokens_per_s) for s in sides)),
                ("Steps", *(count(s.steps) for s in sides)),
                ("Tokens seen", *(count(s.tokens) for s in sides)),
                ("Validation loss at the end", *(loss(s.final_loss) for s in sides))]
        if self.common_tokens:
            rows.append((f"Validation loss at {self.common_tokens:,} tokens seen",
                         *(loss(self.loss_at_common(s)) for s in sides)))
        return rows


def loss_at(curve: list[tuple[int, float]], tokens: int) -> float | None:
    """The validation loss at `tokens` seen, read off the curve between its two nearest evaluations (a straight
    line between them); None outside the curve.

    >>> loss_at([(0, 4.0), (1000, 3.0), (3000, 2.0)], 2000)
    2.5
    >>> loss_at([(0, 4.0), (1000, 3.0)], 1500) is None
    True
    """
    for (t0, v0), (t1, v1) in zip(curve, curve[1:], strict=False):
        if t0 <= tokens <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (tokens - t0) / (t1 - t0)
    return curve[0][1] if curve and curve[0][0] == tokens else None


def run_side(snap: Run) -> RunSide:
    """What a run has done so far, from its snapshot: its records' step, tokens and time, and its evaluations."""
    last = snap.metrics[-1] if snap.metrics else {}
    steps, tokens = int(last.get("step") or 0), int(last.get("tokens") or 0)
    if steps > 0:
        per_step = tokens // steps
    else:  # not one step yet: what its config says one step will be
        c = snap.config or {}
        per_step = c["batch_size"] * c["block_size"] * snap.processes if "batch_size" in c and "block_size" in c else None
    curve = [(int(r.get("tokens") or 0), float(r["val_loss"])) for r in snap.metrics if r.get("val_loss") is not None]
    return RunSide(processes=snap.processes, status=str(snap.status), tokens_per_step=per_step, steps=steps,
                   tokens=tokens, seconds=float(last.get("elapsed_s") or 0.0),
                   final_loss=curve[-1][1] if curve else None, curve=curve)


def compare(one: Run, two: Run) -> Comparison:
    """Show-me function: a run of one process and a run of two, side by side. Each run's tokens per step come from
    its own records (tokens seen ÷ steps); its tokens per second are tokens seen ÷ seconds trained; the losses
    compare at the end and where both validation curves reach (`common_tokens`), since the two-process run sees
    twice the tokens per step and a loss after more tokens is no fair match for one after fewer.

    >>> from types import SimpleNamespace as Snap
    >>> a = Snap(processes=1, status="finished", config={}, metrics=[
    ...     {"step": 0, "tokens": 0, "val_loss": 4.2, "elapsed_s": 0.0},
    ...     {"step": 100, "tokens": 204800, "val_loss": 2.6, "elapsed_s": 20.0}])
    >>> b = Snap(processes=2, status="finished", config={}, metrics=[
    ...     {"step": 0, "tokens": 0, "val_loss": 4.2, "elapsed_s": 0.0},
    ...     {"step": 60, "tokens": 245760, "val_loss": 2.5, "elapsed_s": 20.0}])
    >>> c = compare(a, b)
    >>> c.two.tokens_per_step, round(c.speedup, 2), c.common_tokens, round(c.loss_at_common(c.two), 3)
    (4096, 1.2, 204800, 2.783)
    """
    sides = (run_side(one), run_side(two))
    ends = [s.curve[-1][0] for s in sides if s.curve]
    common = min(ends) if len(ends) == 2 and min(ends) > 0 else None
    return Comparison(sides[0], sides[1], common)


# ---- one step of a two-rank run, by hand ------------------------------------------------------------------------


@dataclass(frozen=True)
class DDPStep:
    ranks: int
    sequences_per_rank: int  # B / ranks
    tokens: int  # predictions in the whole step: B × T
    rank_losses: list[float]  # each rank's loss on its own share; their mean is the whole batch's
    rank_grad_norms: list[float]  # the length of each rank's own gradient
    rank_cosine: float  # cosine between rank 0's and rank 1's gradients: how much the two shares agree
    whole_loss: float  # the whole batch's loss, one pass
    whole_grad_norm: float
    averaged_grad_norm: float  # the length of the all-reduced (averaged) gradient
    max_difference: float  # largest |averaged − whole-batch| over every gradient entry
    relative_difference: float  # that, over the largest whole-batch entry
    parameters: int  # gradient entries each rank sends into the all-reduce
    allreduce_bytes: int  # ... in float32 bytes
    ring_bytes_per_rank: int  # what a ring all-reduce sends out of each rank: 2 (n − 1) / n of that


def _gradient(model: GPT) -> torch.Tensor:
    """Every parameter's gradient, flattened into one vector (a tied matrix once)."""
    return torch.cat([p.grad.detach().flatten() for p in model.parameters() if p.grad is not None])  # (N,)


def ddp_step(model: GPT, x: torch.Tensor, y: torch.Tensor, ranks: int = 2) -> DDPStep:
    """Show-me function: one data-parallel step on a real batch, done by hand. The batch (x, y) is split into
    `ranks` equal shares, one per rank; each rank's gradient is taken on its share alone (its loss the mean over its
    own predictions), and the all-reduce averages them. Because the shares are equal, the mean of their means is the
    whole batch's mean, so the averaged gradient is the whole batch's gradient, to float rounding: DDP with n ranks
    of B sequences trains exactly like one process with batches of n·B. The model's weights are not changed; its
    gradients are cleared afterwards. `x`, `y`: (B, T) inputs and targets, B divisible by `ranks`.

    >>> from engine.transform.model import GPTConfig
    >>> _ = torch.manual_seed(0); model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=11))
    >>> x = torch.randint(0, 11, (8, 8)); s = ddp_step(model, x, torch.roll(x, -1, 1))
    >>> s.sequences_per_rank, s.tokens, s.relative_difference < 1e-5, s.rank_cosine < 0.999
    (4, 64, True, True)
    """
    B, T = x.shape
    if ranks < 2 or B % ranks:
        raise ValueError(f"a batch of {B} sequences does not split evenly between {ranks} ranks")
    share = B // ranks
    was_training = model.training
    model.eval()  # no dropout: the ranks and the whole batch must see the same network
    try:
        model.zero_grad(set_to_none=True)
        _, whole_loss = model(x, y)  # mean over all B·T predictions
        whole_loss.backward()
        whole = _gradient(model)  # (N,)
        grads, losses = [], []
        for r in range(ranks):  # what rank r computes on its own batch
            model.zero_grad(set_to_none=True)
            _, part = model(x[r * share:(r + 1) * share], y[r * share:(r + 1) * share])
            part.backward()
            grads.append(_gradient(model))  # (N,)
            losses.append(float(part.detach()))
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    averaged = torch.stack(grads).mean(dim=0)  # (N,): the all-reduce (a sum over ranks, ÷ ranks)
    difference = float((averaged - whole).abs().max())
    n = whole.numel()
    return DDPStep(
        ranks=ranks, sequences_per_rank=share, tokens=B * T, rank_losses=losses,
        rank_grad_norms=[float(g.norm()) for g in grads],
        rank_cosine=float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)),
        whole_loss=float(whole_loss.detach()), whole_grad_norm=float(whole.norm()),
        averaged_grad_norm=float(averaged.norm()), max_difference=difference,
        relative_difference=difference / max(float(whole.abs().max()), 1e-30), parameters=n,
        allreduce_bytes=n * BYTES_PER_GRADIENT,
        ring_bytes_per_rank=round(2 * (ranks - 1) / ranks * n * BYTES_PER_GRADIENT),
    )
