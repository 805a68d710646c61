"""Setting up a run: device, tokenizer, data, model and optimizers, fresh or from a saved checkpoint.

    state = prepare(PRESETS["tiny"], text)      # everything the loop (engine.loop) needs, in one TrainState

Sources: AdamW (Loshchilov & Hutter 2019) with nanoGPT's weight-decay groups; Muon (momentum + Newton-Schulz
orthogonalised updates for the hidden weight matrices; Keller Jordan 2024, kellerjordan.github.io/posts/muon,
`torch.optim.Muon` since torch 2.9), with embeddings, norms and the head on AdamW as in modded-nanogpt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import checkpoint
from engine.config import TrainConfig
from engine.data import TextDataset
from engine.device import DeviceInfo, get_device
from engine.distributed import DistInfo
from engine.model import GPT
from engine.tokenization import CharTokenizer, Tokenizer, tokenizer_from_dict

# torch's global RNG is shared by all threads: hold this while seeding it and initialising a model, so two
# runs started at once in one process still get the weights their seed promises.
_init_lock = threading.Lock()


@dataclass
class TrainState:
    """Everything a run holds in memory. `model` is the plain GPT; `train_model` may wrap it (compile, DDP)."""

    config: TrainConfig
    model: GPT
    train_model: nn.Module
    optimizers: list[torch.optim.Optimizer]
    data: TextDataset
    tokenizer: Tokenizer
    device: DeviceInfo
    dist: DistInfo
    generator: torch.Generator  # draws the training batches
    step: int = 0  # optimizer steps done so far (continues across a resume)
    elapsed_before: float = 0.0  # wall-clock seconds of earlier segments of this run (before a resume)
    tokens_before: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_per_step(self) -> int:
        return self.config.batch_size * self.config.block_size * self.dist.world_size


def build_optimizers(model: GPT, config: TrainConfig, device: DeviceInfo) -> list[torch.optim.Optimizer]:
    """AdamW (fused kernel where available) or Muon + AdamW. Each group remembers its peak lr in `base_lr`.

    Weight decay only on 2-D weights (matrices and embeddings), never on norms and biases (as nanoGPT does):
    shrinking a gain or a bias towards zero is not a useful prior.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if config.optimizer == "muon":
        # Muon orthogonalises each update matrix, so it only makes sense for the hidden 2-D weights;
        # the embedding (tied with the output head) is a lookup table, not a linear map between hidden states.
        hidden = [p for n, p in params.items() if n.startswith("transformer.h.") and p.dim() == 2]
        rest = {n: p for n, p in params.items() if not (n.startswith("transformer.h.") and p.dim() == 2)}
    elif config.optimizer == "adamw":
        hidden, rest = [], params
    else:
        raise ValueError(f"optimizer must be 'adamw' or 'muon', not {config.optimizer!r}")
    decay = [p for p in rest.values() if p.dim() >= 2]
    no_decay = [p for p in rest.values() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    kwargs = dict(lr=config.lr, betas=(config.beta1, config.beta2))
    try:
        adamw = torch.optim.AdamW(groups, fused=device.type in ("cuda", "cpu", "mps"), **kwargs)
    except (RuntimeError, ValueError):  # fused kernel missing for this device/dtype: the foreach one is next best
        adamw = torch.optim.AdamW(groups, foreach=True, **kwargs)
    optimizers: list[torch.optim.Optimizer] = [adamw]
    if hidden:
        optimizers.append(torch.optim.Muon(hidden, lr=config.muon_lr, weight_decay=config.weight_decay,
                                           momentum=0.95, nesterov=True))
    for opt in optimizers:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    return optimizers


def prepare(
    config: TrainConfig,
    text: str | None = None,
    tokenizer: Tokenizer | None = None,
    resume_from: Path | str | None = None,
    dist_info: DistInfo | None = None,
) -> TrainState:
    """Build everything a run needs: device, tokenizer, data, model, optimizers.

    `tokenizer` None -> a CharTokenizer of `text`. With `resume_from` (a run folder), weights, optimizer state,
    step count, tokenizer and metrics come from its checkpoint; `config` may change the run's length
    (max_steps, time_budget) and evaluation settings, not the model's shape.
    """
    if config.max_steps is None and config.time_budget is None:
        raise ValueError("A run needs an end: set max_steps or time_budget.")
    dist_info = dist_info or DistInfo()
    device = get_device(config.device, config.dtype, dist_info.local_world_size, config.threads)
    if dist_info.enabled and device.type == "cuda":
        device = replace(device, sentence=f"Training on {dist_info.world_size} GPUs ({device.name}), {device.dtype}")
    elif dist_info.enabled:
        threads = f"{device.threads} thread" + ("s" if device.threads > 1 else "")
        device = replace(device, sentence=f"Training on CPU, {dist_info.world_size} processes x {threads}")

    ckpt = checkpoint.read_checkpoint(resume_from) if resume_from is not None else None
    if ckpt is not None:
        tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
        saved = TrainConfig.from_dict(ckpt["train_config"])
        shape = ("n_layer", "n_head", "n_embd", "block_size", "bias", "optimizer")
        config = replace(config, **{k: getattr(saved, k) for k in shape})
    if text is None:
        raise ValueError("prepare() needs the training text")
    if tokenizer is None:
        tokenizer = CharTokenizer.from_text(text)
    data = TextDataset(text, tokenizer)
    data.check_block_size(config.block_size)

    with _init_lock:
        torch.manual_seed(config.seed)  # every rank builds the same initial weights
        model = GPT(config.model_config(tokenizer.vocab_size))
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    model.to(device.device)
    optimizers = build_optimizers(model, config, device)
    if ckpt is not None:
        for opt, sd in zip(optimizers, ckpt["optimizers"], strict=True):
            opt.load_state_dict(sd)
            for group in opt.param_groups:  # the new run's settings win over the saved peak lr
                group["base_lr"] = config.muon_lr if isinstance(opt, torch.optim.Muon) else config.lr

    train_model: nn.Module = model
    if device.compile:
        try:
            train_model = torch.compile(model)
        except Exception:  # noqa: BLE001 - compile is an optimisation; eager mode always works
            train_model = model
    if dist_info.enabled:
        ids = [device.device.index or dist_info.local_rank] if device.type == "cuda" else None
        # no buffer sync before each forward: our only buffer is the constant causal mask
        train_model = nn.parallel.DistributedDataParallel(train_model, device_ids=ids, forward_sync_buffers=False)

    generator = torch.Generator().manual_seed(config.seed + dist_info.rank)  # each rank draws its own batches
    state = TrainState(config=config, model=model, train_model=train_model, optimizers=optimizers, data=data,
                       tokenizer=tokenizer, device=device, dist=dist_info, generator=generator)
    if ckpt is not None:
        state.step = int(ckpt["step"])
        state.elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        state.tokens_before = int(ckpt.get("tokens", 0))
        state.metrics = list(ckpt.get("metrics", []))
        if ckpt.get("rng") is not None and not dist_info.enabled:
            state.generator.set_state(ckpt["rng"])  # the batches continue where they stopped
    return state
