"""What training holds in memory (lesson 9): weights, gradients, the optimizer's state and the activations kept for
the backward pass, counted per parameter and measured on one real step of the learner's model.

The accounting is the ZeRO paper's (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion
Parameter Models", section 3.1): mixed-precision Adam holds 2 bytes per parameter of 16-bit weights, 2 of 16-bit
gradients and 12 of float32 state (master weights, momentum, variance): 16 bytes per parameter before activations.
Plain float32 with Adam also comes to 16 (4 + 4 + 8): mixed precision saves time and activation memory, not state.
This engine trains as torch.autocast does: weights and gradients stay float32 (the weights are their own master
copy) and bf16 copies of the weights are made in the forward pass; AdamW keeps two float32 moments per parameter and
a step count per tensor, Muon (the block matrices, engine.train.prepare.build_optimizers) one momentum buffer.
Activations are estimated by Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
Models", section 4.1) as s·b·h·(34 + 5·a·s/h) bytes per layer (16-bit, no recomputation); `measure_step` measures
them instead, adding up every tensor autograd saves for the backward pass (torch.autograd.graph.saved_tensors_hooks).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.cost.catalogue import accelerators
from engine.cost.catalogue import model as published_model
from engine.cost.mixed_precision import PrecisionView, precision_view
from engine.cost.report import run_precision  # one rule for what a run's device sentence says
from engine.device import DeviceInfo
from engine.runs.snapshot import snapshot_from_folder
from engine.train.config import TrainConfig
from engine.train.muon import Muon
from engine.train.prepare import build_optimizers
from engine.transform.data import TextDataset
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import Tokenizer

# float32 bytes of optimizer state per parameter: AdamW's momentum and variance, Muon's momentum buffer
STATE_BYTES = {"adamw": 8, "muon": 4}
STEP_COUNT_BYTES = 4  # AdamW's step count: one float32 per parameter tensor
PRECISIONS = ("float32", "mixed")
# the autograd nodes between a parameter and its bf16 copy as a matmul saves it: the cast, then views of it
RESHAPES = {"ToCopyBackward0", "TBackward0", "TransposeBackward0", "ViewBackward0", "UnsafeViewBackward0",
            "PermuteBackward0", "ExpandBackward0", "AliasBackward0"}  # "float32" is also torch.autocast's (this engine's) state; "mixed": the ZeRO paper's


@dataclass(frozen=True)
class MemoryPart:
    """One part of a run's memory."""

    name: str
    bytes: float
    per_param: float | None  # bytes per parameter (None: activations, which grow with the batch instead)


@dataclass(frozen=True)
class MemoryBreakdown:
    """A run's memory by part: the training state (weights, gradients, optimizer) and the activations."""

    parameters: int
    precision: str
    parts: list[MemoryPart]

    @property
    def state_bytes(self) -> float:
        return sum(p.bytes for p in self.parts if p.per_param is not None)

    @property
    def total_bytes(self) -> float:
        return sum(p.bytes for p in self.parts)

    @property
    def state_per_param(self) -> float:
        return self.state_bytes / self.parameters


def training_memory(params: dict[str, int], precision: str = "mixed", activations_bytes: float = 0.0,
                    adamw_tensors: int = 0) -> MemoryBreakdown:
    """The memory of training `params` (optimizer name -> parameters it updates) in `precision`, plus activations.

    "float32": 4 bytes of weights and 4 of gradients per parameter (torch.autocast keeps these too); "mixed" (ZeRO):
    2 + 2 of 16-bit weights and gradients and a float32 master copy of 4. Then the optimizer's float32 state.

    >>> b = training_memory({"adamw": 1_000})
    >>> [(p.name, p.per_param) for p in b.parts]  # doctest: +NORMALIZE_WHITESPACE
    [('weights (16-bit)', 2.0), ('gradients (16-bit)', 2.0), ('master weights (float32)', 4.0),
     ('AdamW momentum and variance', 8.0)]
    >>> b.state_per_param, training_memory({"adamw": 1_000}, "float32").state_per_param
    (16.0, 16.0)
    >>> training_memory({"adamw": 100, "muon": 900}, "float32").state_per_param  # (100 * 16 + 900 * 12) / 1000
    12.4
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    n = sum(params.values())
    if precision == "mixed":
        parts = [MemoryPart("weights (16-bit)", 2.0 * n, 2.0), MemoryPart("gradients (16-bit)", 2.0 * n, 2.0),
                 MemoryPart("master weights (float32)", 4.0 * n, 4.0)]
    else:
        parts = [MemoryPart("weights (float32)", 4.0 * n, 4.0), MemoryPart("gradients (float32)", 4.0 * n, 4.0)]
    if params.get("adamw"):
        adam = STATE_BYTES["adamw"] * params["adamw"] + STEP_COUNT_BYTES * adamw_tensors
        parts.append(MemoryPart("AdamW momentum and variance", adam, adam / n))
    if params.get("muon"):
        parts.append(MemoryPart("Muon momentum", STATE_BYTES["muon"] * params["muon"], STATE_BYTES["muon"] * params["muon"] / n))
    if activations_bytes:
        parts.append(MemoryPart("activations", float(activations_bytes), None))
    return MemoryBreakdown(n, precision, parts)


def activation_estimate(config: GPTConfig, batch: int) -> float:
    """Korthikanti et al. 2022's activation bytes per layer, s·b·h·(34 + 5·a·s/h), with s the context (block_size),
    b the batch, h the width and a the heads: 16-bit activations, dropout masks, attention scores stored.

    >>> activation_estimate(GPTConfig(n_layer=3, n_head=4, n_embd=128, block_size=64), 32)
    11534336.0
    """
    s, b, h, a = config.block_size, batch, config.n_embd, config.n_head
    return float(s * b * h * (34 + 5 * a * s / h))


def optimizer_mix(optimizers: list[torch.optim.Optimizer]) -> tuple[dict[str, int], int]:
    """(optimizer name -> parameters it updates, AdamW's parameter tensors), read from the optimizers themselves."""
    params: dict[str, int] = {}
    tensors = 0
    for opt in optimizers:
        name = "muon" if isinstance(opt, Muon) else "adamw"
        group_params = [p for g in opt.param_groups for p in g["params"]]
        params[name] = params.get(name, 0) + sum(p.numel() for p in group_params)
        tensors += len(group_params) if name == "adamw" else 0
    return params, tensors


@contextmanager
def saved_for_backward(model: nn.Module, layers: nn.ModuleList) -> Iterator[dict[str, dict[int, int]]]:
    """Inside the block, every tensor autograd saves for the backward pass is recorded by its storage (counted once
    however many views of it are saved), in {"layer i" | "outside the blocks" | "16-bit weight copies": {storage: bytes}}.
    The model's own parameters are left out (they are the weights, not activations); a saved cast of one (autocast's
    bf16 copy) is counted apart."""
    params = {p.untyped_storage().data_ptr(): p for p in model.parameters()}
    param_ids = {id(p) for p in model.parameters()}
    found: dict[str, dict[int, int]] = {}
    where = ["outside the blocks"]

    def is_weight_copy(t: torch.Tensor) -> bool:
        fn = t.grad_fn  # a cast of a parameter, perhaps seen through a view (a transpose for the matmul)
        while fn is not None and type(fn).__name__ in RESHAPES and len(fn.next_functions) == 1:
            fn = fn.next_functions[0][0]
            if id(getattr(fn, "variable", None)) in param_ids:
                return True
        return False

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            part = "16-bit weight copies" if is_weight_copy(t) else where[0]
            if not any(storage.data_ptr() in seen for seen in found.values()):
                found.setdefault(part, {})[storage.data_ptr()] = storage.nbytes()
        return t

    hooks = []
    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_pre_hook(lambda _m, _a, i=i: where.__setitem__(0, f"layer {i + 1}")))
        hooks.append(layer.register_forward_hook(lambda *_: where.__setitem__(0, "outside the blocks")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield found
    finally:
        for h in hooks:
            h.remove()


@dataclass(frozen=True)
class Activations:
    """Activation bytes measured in one forward pass, by where they were saved."""

    dtype: str  # "float32" or "bfloat16" (autocast)
    per_layer: list[int]
    outside: int  # embeddings, final norm, output layer and loss
    weight_copies: int  # autocast's bf16 copies of the weights, kept for the backward pass

    @property
    def total(self) -> int:
        return sum(self.per_layer) + self.outside


@dataclass(frozen=True)
class OwnModelMemory:
    """The learner's model: one real training step measured, beside the per-parameter formula."""

    parameters: int
    params_by_optimizer: dict[str, int]
    adamw_tensors: int  # AdamW keeps a step count for each
    batch: int
    block: int
    dtype: str  # what the run trained in: the step below was taken in it
    weights: int  # measured: bytes of every parameter (a tied matrix once)
    gradients: int  # measured after the backward pass
    optimizer: dict[str, int]  # measured after the step: bytes of each optimizer's state
    formula: MemoryBreakdown  # training_memory for this optimizer mix, in float32 (as this engine trains)
    activations: dict[str, Activations]  # "float32" and "bfloat16": the same batch both ways
    estimate_per_layer: float  # Korthikanti's 16-bit formula, for comparison
    loss: float
    precision: PrecisionView


def _bytes(tensors: Iterator[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_step(model: GPT, config: TrainConfig, x: torch.Tensor, y: torch.Tensor, dtype: str) -> OwnModelMemory:
    """Show-me function: one real training step of a copy of `model` on the batch x, y (B, T), in `dtype` ("float32"
    or "bfloat16" autocast), with the run's optimizers at their peak learning rate; the memory of each part measured
    (weights, gradients, optimizer state after the step, activations saved for the backward pass, in both precisions),
    and the step's gradient and update handed to engine.cost.mixed_precision.

    The model passed in is not changed (the step runs on a copy)."""
    m = copy.deepcopy(model).train()  # (the caller's model may be shared, read-only)
    device = DeviceInfo("cpu", "cpu", torch.get_num_threads(), "float32", False, "")
    optimizers = build_optimizers(m, config, device)
    activations = {}
    for name in ("float32", "bfloat16") if dtype == "float32" else ("bfloat16", "float32"):
        with saved_for_backward(m, m.transformer.h) as saved, torch.autocast("cpu", torch.bfloat16,
                                                                              enabled=name == "bfloat16"):
            _, loss = m(x, y)
        per_layer = [sum(saved.get(f"layer {i + 1}", {}).values()) for i in range(len(m.transformer.h))]
        activations[name] = Activations(name, per_layer, sum(saved.get("outside the blocks", {}).values()),
                                        sum(saved.get("16-bit weight copies", {}).values()))
        if name == dtype:  # the run's own precision: this forward pass is the one the step uses
            loss.backward()
            step_loss = float(loss.detach())
        del loss
    named = list(m.named_parameters())
    grad = torch.cat([p.grad.detach().float().flatten() for _, p in named])  # (N,)
    before = torch.cat([p.detach().float().flatten() for _, p in named])  # (N,)
    gradients = _bytes(p.grad for _, p in named)
    nn.utils.clip_grad_norm_(m.parameters(), config.grad_clip if config.grad_clip > 0 else 1e30)
    for opt in optimizers:
        opt.step()
    update = torch.cat([p.detach().float().flatten() for _, p in named]) - before  # (N,): what the step changed
    optimizer = {}
    for opt in optimizers:
        name = "muon" if isinstance(opt, Muon) else "adamw"
        optimizer[name] = _bytes(t for s in opt.state.values() for t in s.values() if torch.is_tensor(t))
    mix, adamw_tensors = optimizer_mix(optimizers)
    B, T = x.shape
    return OwnModelMemory(
        parameters=sum(p.numel() for _, p in named), params_by_optimizer=mix, adamw_tensors=adamw_tensors, batch=B, block=T, dtype=dtype,
        weights=_bytes(p for _, p in named), gradients=gradients, optimizer=optimizer,
        formula=training_memory(mix, "float32", 0.0, adamw_tensors), activations=activations,
        estimate_per_layer=activation_estimate(m.config, B), loss=step_loss,
        precision=precision_view(grad, before, update, [n for n, _ in named], [p.numel() for _, p in named]),
    )


@dataclass(frozen=True)
class RunSettings:
    """What a run folder says about how it trained."""

    config: TrainConfig  # its optimizer settings and batch size
    dtype: str  # "float32" or "bfloat16": what it multiplied in
    device: str  # its device sentence, e.g. "Training on CPU, 2 threads"


def run_settings(run_dir: str | Path) -> RunSettings:
    """The training config, precision and device sentence a run folder recorded (engine.runs.snapshot)."""
    snap = snapshot_from_folder(run_dir)
    return RunSettings(TrainConfig.from_dict(snap.config), run_precision(snap.device_sentence,
                                                                         snap.config.get("dtype", "auto")),
                       snap.device_sentence)


def run_batch(tokenizer: Tokenizer, text: str, batch: int, block: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch of `text` as the trainer draws it (seeded): inputs and targets, (B, T) each."""
    data = TextDataset(text, tokenizer)
    data.check_block_size(block)
    return data.get_batch("train", batch, block, torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class ChipFit:
    """How many of one chip it takes just to hold a training state."""

    id: str
    name: str
    memory_gb: float
    chips: int


@dataclass(frozen=True)
class PublishedMemory:
    """A catalogue model's training state with Adam, in float32 and in mixed precision, and the chips to hold it."""

    id: str
    name: str
    parameters: float
    source: str
    float32: MemoryBreakdown
    mixed: MemoryBreakdown
    chips: list[ChipFit]  # for the mixed-precision state, every catalogue chip with a memory size


def chips_to_hold(state_bytes: float, memory_gb: float) -> int:
    """Chips whose memories together hold `state_bytes` (GB = 10^9 bytes), nothing else on them.

    >>> chips_to_hold(128e9, 80), chips_to_hold(128e9, 141), chips_to_hold(80e9, 80)
    (2, 1, 1)
    """
    return math.ceil(state_bytes / (memory_gb * 1e9))


def published_memory(model_id: str) -> PublishedMemory:
    """Show-me function: a catalogue model's training state with Adam for every parameter (activations come on top:
    the catalogue does not record the layers and widths they depend on).

    >>> p = published_memory("llama3_8b")
    >>> p.mixed.state_bytes / 1e9, {c.id: c.chips for c in p.chips}["h100_sxm"]
    (128.0, 2)
    """
    m = published_model(model_id)
    n = int(m.parameters)
    mixed = training_memory({"adamw": n}, "mixed")
    fits = [ChipFit(a.id, a.name, a.memory_gb, chips_to_hold(mixed.state_bytes, a.memory_gb))
            for a in accelerators() if a.memory_gb]
    return PublishedMemory(m.id, m.name, m.parameters, m.source, training_memory({"adamw": n}, "float32"), mixed, fits)
