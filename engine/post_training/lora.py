"""LoRA (low-rank adaptation, Hu et al. 2021): fine-tune a model by training two thin matrices beside each big one.

Full fine-tuning updates every weight. LoRA freezes them and learns, for each adapted matrix W (out x in), a
change of rank r: W' = W + (alpha / r) B A, with A (r x in) and B (out x r). For the course's 128-wide model and
r = 4, the attention's 384 x 128 matrix (49,152 numbers) gets 4 x 128 + 384 x 4 = 2,048 trainable ones. B starts at
zero, so training starts from exactly the model it adapts; A starts small and random, so B's gradient is not zero.

Here every linear map inside the transformer blocks (attention's query-key-value and output projections, the MLP's
two layers) gets an adapter, as QLoRA does (Dettmers et al. 2023); the original paper adapted the query and value
projections only. The adapters live outside the model (`LoraAdapters`) and act through forward hooks, so the
model's own weights and their names never change: a checkpoint saves `merged_state_dict`, the weights with B A
added in, and any code that loads a model loads a LoRA fine-tune as it would any other. The token table stays
trainable too, because the chat template's special tokens are new rows that must learn what they mean (the PEFT
library calls such layers `modules_to_save`); the learner sees both counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ALPHA_PER_RANK = 2.0  # alpha = 2 r, so the scale alpha / r is 2 at every rank (a common choice)
ADAPTED = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # which linear maps of each block get one


@dataclass(frozen=True)
class TrainableCount:
    """What a fine-tune trains: LoRA's adapters and the token table, against every weight of the model."""

    adapters: int
    token_table: int
    total_model: int  # every parameter of the model (what full fine-tuning trains)
    positions: int = 0  # of which the position table's (a run's own count leaves them out, as nanoGPT does)

    @property
    def trainable(self) -> int:
        return self.adapters + self.token_table

    @property
    def fraction(self) -> float:
        return self.trainable / self.total_model


class LoraAdapters(nn.Module):
    """The A and B matrices of every adapted linear map of `model`, and the hooks that add (alpha / r) x A^T B^T to
    each map's output. `remove()` takes the hooks off again."""

    def __init__(self, model: nn.Module, rank: int, seed: int = 0):
        super().__init__()
        if rank < 1:
            raise ValueError("a LoRA rank is a whole number of at least 1")
        self.rank, self.scale = rank, ALPHA_PER_RANK
        self.targets: dict[str, nn.Linear] = {name: mod for name, mod in model.named_modules()
                                              if name.endswith(ADAPTED) and isinstance(mod, nn.Linear)}
        if not self.targets:
            raise ValueError("this model has no linear maps LoRA knows how to adapt")
        generator = torch.Generator().manual_seed(seed)
        self.A = nn.ParameterDict()
        self.B = nn.ParameterDict()
        for name, linear in self.targets.items():
            out_f, in_f = linear.weight.shape
            key = name.replace(".", "__")  # ParameterDict keys may not hold dots
            a = torch.empty(rank, in_f)  # (r, in)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)  # as nn.Linear initialises (LoRA's code)
            self.A[key] = nn.Parameter(a.to(linear.weight.device))
            self.B[key] = nn.Parameter(torch.zeros(out_f, rank, device=linear.weight.device))  # (out, r): B A = 0
        self._hooks = [linear.register_forward_hook(self._hook(name.replace(".", "__")))
                       for name, linear in self.targets.items()]

    def _hook(self, key: str):
        def add_low_rank(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            x = inputs[0]  # (B, T, in)
            low = x @ self.A[key].to(x.dtype).T  # (B, T, in) @ (in, r) -> (B, T, r): r numbers per position
            return output + self.scale * (low @ self.B[key].to(x.dtype).T)  # (B, T, r) @ (r, out) -> (B, T, out)
        return add_low_rank

    def delta(self, name: str) -> torch.Tensor:
        """The change LoRA makes to the linear map `name`: (alpha / r) B A, (out, in)."""
        key = name.replace(".", "__")
        return self.scale * (self.B[key] @ self.A[key])

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def attach(model: nn.Module, rank: int, seed: int = 0) -> LoraAdapters:
    """Freeze `model` but its token table and add rank-`rank` adapters; returns them (their parameters, and the
    token table, are what the optimizer trains)."""
    adapters = LoraAdapters(model, rank, seed)
    for name, param in model.named_parameters():
        param.requires_grad_(name == "transformer.wte.weight")  # tied to the output head: one table, new rows
    return adapters


def merged_state_dict(model: nn.Module, adapters: LoraAdapters | None) -> dict[str, torch.Tensor]:
    """The model's weights with each adapter's B A added in: what a LoRA fine-tune saves, a plain model that loads
    and runs with no adapters (the same outputs, to float rounding). Without adapters, the model's state dict."""
    state = model.state_dict()
    if adapters is None:
        return state
    merged = dict(state)
    with torch.no_grad():
        for name in adapters.targets:
            key = f"{name}.weight"
            merged[key] = state[key] + adapters.delta(name).to(state[key].dtype)
    return merged


def count_trainable(model: nn.Module, rank: int) -> TrainableCount:
    """The show-me numbers: LoRA's trainable parameters at `rank` (adapters, and the token table it keeps
    trainable) against all of the model's, which full fine-tuning trains. Counts unique tensors (the token table
    is tied to the output head)."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():  # parameters() yields a tied tensor once
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
    adapters = 0
    for name, mod in model.named_modules():
        if name.endswith(ADAPTED) and isinstance(mod, nn.Linear):
            out_f, in_f = mod.weight.shape
            adapters += rank * (in_f + out_f)
    named = dict(model.named_parameters())
    return TrainableCount(adapters=adapters, token_table=named["transformer.wte.weight"].numel(), total_model=total,
                          positions=named["transformer.wpe.weight"].numel())
