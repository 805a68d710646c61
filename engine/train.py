"""The trainer: next-token prediction with a warm-up + cosine learning-rate schedule, in plain functions.

    state = prepare(PRESETS["tiny"], text)             # model, optimizer, data, device
    outcome = train_loop(state, on_record=print)       # one metrics record per step, then a summary
    save_run(state, outcome, "runs/demo")              # the "Load" stage: engine.checkpoint

The same loop serves the course's run manager (engine.runs, in a training process of its own), the command line
(`python -m engine.train ...`) and `torchrun` (DistributedDataParallel across processes or GPUs).

Where the ideas come from:
- the loop, AdamW settings and presets: Karpathy's nanoGPT `train.py` (shakespeare_char config);
- AdamW: Loshchilov & Hutter 2019; warm-up then cosine decay: Loshchilov & Hutter 2017 (SGDR), as in GPT-3;
- Muon (momentum + Newton-Schulz orthogonalised updates for the hidden weight matrices): Keller Jordan 2024,
  kellerjordan.github.io/posts/muon, `torch.optim.Muon` since torch 2.9; embeddings, norms and the output head
  stay on AdamW, as in modded-nanogpt;
- gradient clipping: Pascanu et al. 2013.

A run ends at `max_steps` or when its wall-clock `time_budget` runs out. With a budget, the schedule is planned
for the budget: after a few steps the trainer measures its speed and sizes the total step count so the cosine
decay reaches its floor just as time runs out (and re-plans at each evaluation, in case the machine got busier).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from engine import checkpoint
from engine.data import TextDataset
from engine.device import DeviceInfo, get_device
from engine.model import GPT, GPTConfig
from engine.tokenization import CharTokenizer, Tokenizer, tokenizer_from_dict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "data" / "tinyshakespeare.txt"

# torch's global RNG is shared by all threads: hold this while seeding it and initialising a model, so two
# runs started at once by the run manager still get the weights their seed promises.
_init_lock = threading.Lock()


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are the `lesson` preset's (see PRESETS)."""

    # model shape (vocab_size comes from the tokenizer)
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64  # context length in tokens
    dropout: float = 0.0
    bias: bool = False
    # optimisation
    batch_size: int = 32  # sequences per step (per process under torchrun)
    optimizer: str = "muon"  # "adamw": AdamW for everything; "muon": Muon for hidden matrices, AdamW for the rest
    lr: float = 3e-3  # AdamW's peak learning rate
    muon_lr: float = 0.04  # Muon's peak learning rate (its updates are normalised, so it is on another scale)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99  # 0.99 rather than GPT's 0.95-0.999: small batches, few steps (nanoGPT shakespeare)
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    warmup_steps: int = 20
    min_lr_frac: float = 0.1  # the cosine ends at this fraction of the peak learning rate
    # how long
    max_steps: int | None = None
    time_budget: float | None = 60.0  # seconds of wall clock, evaluation included
    # evaluation and samples
    eval_interval: int = 100  # estimate validation loss every this many steps ...
    eval_batches: int = 8  # ... over this many batches (cheap: evaluation must not eat the budget)
    final_eval_batches: int = 50  # the end-of-run estimate, thorough enough to compare runs
    sample_interval: int = 200  # generate a text sample every this many steps (and at step 0)
    sample_tokens: int = 80
    sample_prompt: str = "\n"
    # reproducibility and hardware
    seed: int = 1337
    device: str = "auto"  # "auto", "cpu", "cuda" or "mps"
    dtype: str = "auto"  # "auto", "float32" or "bfloat16" (see engine.device)
    threads: int | None = None  # CPU threads; None = one per physical core

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(block_size=self.block_size, vocab_size=vocab_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout, bias=self.bias)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring keys this version does not know (old checkpoints stay loadable)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


PRESETS: dict[str, TrainConfig] = {
    # For tests: a toy model that learns something in a few dozen steps, well under a second on a CPU.
    "tiny": TrainConfig(
        n_layer=2, n_head=2, n_embd=32,  # ~27k parameters
        block_size=16,
        batch_size=8,
        optimizer="adamw",  # the simplest, most familiar optimizer for unit tests
        lr=1e-2,  # a toy model tolerates (and needs, in 60 steps) a large learning rate
        warmup_steps=5,
        max_steps=60, time_budget=None,  # fixed length: reproducible
        eval_interval=20, eval_batches=4, final_eval_batches=4,  # tests need speed, not precise estimates
        sample_interval=20, sample_tokens=16,
        dtype="float32",  # tiny matrices gain nothing from bf16; float32 is the same on every machine
        threads=1,  # a second thread costs more than it saves on toy matrices (and stalls on a busy machine)
    ),
    # The default the course's UI uses: 3 layers x 4 heads x 128 wide (0.6M parameters), batch 32 x 64 tokens,
    # Muon + AdamW, 60 s. The best validation loss we measured in 60 s on a 2-core CPU (about 1.63 when the
    # machine is quiet); docs/training-notes.md says what else we tried.
    "lesson": TrainConfig(),
    # For a CUDA GPU: nanoGPT's shakespeare_char model (10.7M parameters), reaches ~1.47 validation loss.
    "gpu": TrainConfig(
        n_layer=6, n_head=6, n_embd=384,  # deeper and wider: a GPU does this in minutes
        block_size=256,  # a longer context: the GPU has the memory and the speed
        dropout=0.2,  # big model, small corpus: it would overfit without dropout
        batch_size=64,
        optimizer="adamw",
        lr=1e-3,  # larger models want smaller steps
        warmup_steps=100,
        max_steps=5000, time_budget=None,
        eval_interval=250, eval_batches=100, final_eval_batches=200,
        sample_interval=500, sample_tokens=200,
    ),
}


# ---------------------------------------------------------------------------------------------------------
# Setting up a run


@dataclass
class DistInfo:
    """This process's place under torchrun (rank 0 of 1 when run alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in its environment variables (RANK, WORLD_SIZE, ...).

    NCCL between GPUs, gloo between CPU processes. Without torchrun this returns a single-process DistInfo.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    info = DistInfo(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                    world_size=int(os.environ["WORLD_SIZE"]),
                    local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


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


# ---------------------------------------------------------------------------------------------------------
# The pieces of one step


def lr_factor(step: int, config: TrainConfig, total_steps: int | None, start_step: int = 0) -> float:
    """Fraction of the peak learning rate for the update that produces step `step + 1`.

    Linear warm-up over `warmup_steps` (Adam's early estimates are noisy: small steps until they settle), then a
    half cosine from 1 down to `min_lr_frac` at `total_steps`. `start_step` > 0 when a resumed run plans a
    fresh schedule for its new budget.

    >>> c = TrainConfig(warmup_steps=10, min_lr_frac=0.1)
    >>> [round(lr_factor(s, c, 110), 2) for s in (0, 9, 60, 110)]
    [0.1, 1.0, 0.55, 0.1]
    """
    s = step - start_step
    if s < config.warmup_steps:
        return (s + 1) / config.warmup_steps
    if total_steps is None:
        return 1.0
    progress = min(1.0, (s - config.warmup_steps) / max(1, total_steps - start_step - config.warmup_steps))
    return config.min_lr_frac + (1.0 - config.min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_schedule_points(config: TrainConfig, total_steps: int, n: int = 100) -> list[tuple[int, float]]:
    """Show-me function: (step, learning rate) pairs of the schedule, for the UI to draw."""
    steps = sorted({round(i * (total_steps - 1) / max(1, n - 1)) for i in range(n)})
    return [(s + 1, config.lr * lr_factor(s, config, total_steps)) for s in steps]


@torch.no_grad()
def estimate_loss(state: TrainState, split: str, n_batches: int, deadline: float | None = None,
                  min_batches: int = 1, timings: list[float] | None = None) -> float:
    """Mean loss over `n_batches` batches of `split`. The batches are the same at every call (a fixed seed),
    so the curve moves only because the model changed, not because the batches did.

    `deadline` (a time.perf_counter() value): stop early, after at least `min_batches`, if it passes (a machine
    that suddenly got busy must not push a timed run far past its budget). Ignored under DDP, where every
    process must run the same number of batches. `timings`, if given, receives each batch's seconds.
    """
    model, cfg = state.model, state.config
    model.eval()
    g = torch.Generator().manual_seed(cfg.seed + 10_000 + 7 * state.dist.rank + (1 if split == "val" else 0))
    total = torch.zeros((), device=state.device.device)
    done = 0
    for _ in range(n_batches):
        t = time.perf_counter()
        x, y = state.data.get_batch(split, cfg.batch_size, cfg.block_size, g, state.device.device)
        with state.device.autocast():
            _, loss = model(x, y)
        total += loss.float()
        done += 1
        if timings is not None:
            timings.append(time.perf_counter() - t)
        if deadline is not None and not state.dist.enabled and done >= min_batches and time.perf_counter() > deadline:
            break
    model.train()
    mean = total / done
    if state.dist.enabled:
        dist.all_reduce(mean, op=dist.ReduceOp.SUM)
        mean /= state.dist.world_size
    return float(mean)


def generate_sample(state: TrainState, n_tokens: int | None = None, prompt: str | None = None) -> str:
    """A short text from a fixed prompt and a fixed random seed, so successive samples differ only because the
    model learned something. Returns the prompt followed by what the model wrote."""
    cfg = state.config
    prompt = cfg.sample_prompt if prompt is None else prompt
    try:
        ids = state.tokenizer.encode(prompt)
    except ValueError:  # the prompt uses a character this corpus lacks
        ids = []
    if not ids:
        ids = state.data.train[:1].tolist()
    idx = torch.tensor([ids], dtype=torch.long, device=state.device.device)  # (1, T)
    g = torch.Generator(device=state.device.device).manual_seed(cfg.seed)
    with state.device.autocast():
        out = state.model.generate(idx, n_tokens or cfg.sample_tokens, temperature=1.0, generator=g)
    return state.tokenizer.decode(out[0].tolist())


def divergence_message(loss: float, step: int, config: TrainConfig, start_loss: float) -> str:
    """A plain explanation for a learner of why the run stopped."""
    if config.optimizer == "muon":
        used = f"you used lr={config.lr:g} and muon_lr={config.muon_lr:g}"
        near = f"lr={PRESETS['lesson'].lr:g} and muon_lr={PRESETS['lesson'].muon_lr:g}"
    else:
        used, near = f"you used lr={config.lr:g}", "lr=1e-3"  # AdamW's usual range for small GPTs: 1e-4 .. 3e-3
    if math.isnan(loss) or math.isinf(loss):
        what = "NaN (not a number)" if math.isnan(loss) else "infinite"
        return (f"The loss became {what} at step {step}: the updates grew so large the numbers overflowed. "
                f"This usually means the learning rate is too high ({used}); try something near {near}.")
    return (f"The loss shot up to {loss:.1f} at step {step}, far above the {start_loss:.1f} it started from: the "
            f"updates overshoot instead of going downhill. This usually means the learning rate is too high "
            f"({used}); try something near {near}.")


@dataclass
class TrainOutcome:
    """How a run ended: status "finished", "stopped" or "diverged", a message for the learner, headline numbers."""

    status: str
    message: str
    summary: dict[str, Any]


# ---------------------------------------------------------------------------------------------------------
# The loop


def train_loop(
    state: TrainState,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    stop_event: threading.Event | None = None,
) -> TrainOutcome:
    """Train until max_steps, the time budget, divergence or `stop_event`; publish one record per step.

    A record is a plain dict: step, train_loss (this step's batch), val_loss (None except at evaluations),
    lr, grad_norm, tokens_per_s, elapsed_s, eta_s, tokens; plus "sample" (text) when one was generated, and on
    the last step "final": True and "train_eval_loss". Step 0 (a fresh run) is the untrained model: its
    validation loss is near ln(vocab_size) and its sample is gibberish.
    """
    cfg, model, dinfo = state.config, state.train_model, state.dist
    publish = on_record or (lambda record: None)
    t0 = time.perf_counter()
    start_step = state.step
    total_steps = cfg.max_steps  # may be re-planned below when there is a time budget
    # A resumed run with a fresh time budget gets a fresh warm-up + cosine; with max_steps it continues.
    sched_start = start_step if (cfg.time_budget and start_step > 0) else 0
    ln_vocab = math.log(state.tokenizer.vocab_size)
    eval_s_per_batch = [float("inf")]  # best measured time of one evaluation batch

    def elapsed() -> float:
        return time.perf_counter() - t0

    # the end-of-run evaluation may overrun the budget by 5% + 1 s at most, however busy the machine gets
    deadline = t0 + 1.05 * cfg.time_budget + 1.0 if cfg.time_budget else None

    def timed_eval(split: str, n: int) -> float:
        times: list[float] = []
        loss = estimate_loss(state, split, n, deadline=deadline, min_batches=min(n, cfg.eval_batches), timings=times)
        # the median batch: the very first evaluation pays one-off costs on its first batch
        eval_s_per_batch[0] = min(eval_s_per_batch[0], sorted(times)[len(times) // 2])
        return loss

    step_times = [float("inf"), 0.0]  # best and recent (smoothed) seconds per training step

    def final_reserve() -> float:
        # time the end-of-run evaluation will take: val over final_eval_batches + train over eval_batches,
        # at the best measured speed, slowed down as much as training has been lately (a busy machine)
        per = eval_s_per_batch[0] if math.isfinite(eval_s_per_batch[0]) else 0.0
        slowdown = max(1.0, step_times[1] / step_times[0]) if math.isfinite(step_times[0]) else 1.0
        return 1.1 * per * slowdown * (cfg.final_eval_batches + cfg.eval_batches) + 0.05

    if start_step == 0:
        rec = {"step": 0, "train_loss": None, "val_loss": timed_eval("val", cfg.eval_batches), "lr": 0.0,
               "grad_norm": None, "tokens_per_s": None, "elapsed_s": 0.0, "eta_s": cfg.time_budget, "tokens": 0}
        rec["train_loss"] = rec["val_loss"]  # nothing trained yet: both splits look the same to the model
        if dinfo.is_main and cfg.sample_interval:
            rec["sample"] = generate_sample(state)
        state.metrics.append(rec)
        publish(rec)
    start_loss = state.metrics[0]["val_loss"] if state.metrics else ln_vocab

    ref_step, ref_time = None, 0.0  # throughput is measured from here (the first steps include warm-up costs)
    plan_at = start_step + 5  # first plan after a few steps
    tok_rate = None
    status, message = "finished", ""
    while total_steps is None or state.step < total_steps:
        t_step = time.perf_counter()
        factor = lr_factor(state.step, cfg, total_steps, sched_start)
        for opt in state.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor

        x, y = state.data.get_batch("train", cfg.batch_size, cfg.block_size, state.generator, state.device.device)
        with state.device.autocast():
            _, loss = model(x, y)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else 1e30)
        for opt in state.optimizers:
            opt.step()
        for opt in state.optimizers:
            opt.zero_grad(set_to_none=True)
        state.step += 1

        # One number per step crosses from the device: the loss (and the norm). Under DDP the ranks average
        # it and agree on whether to stop, so no process is left waiting for a partner that quit.
        want_stop = stop_event is not None and stop_event.is_set()
        over_time = cfg.time_budget is not None and elapsed() + final_reserve() >= cfg.time_budget
        if dinfo.enabled:
            flags = torch.tensor([float(want_stop), float(over_time)], device=loss.device)
            t = torch.cat([loss.detach().float().view(1), flags])  # NCCL needs the tensor on the GPU
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            loss_val, want_stop, over_time = float(t[0]) / dinfo.world_size, bool(t[1] > 0), bool(t[2] > 0)
        else:
            loss_val = loss.item()
        dt = time.perf_counter() - t_step
        if state.step > start_step + 1:  # the first step pays one-off costs (allocations, kernel choice)
            step_times[0] = min(step_times[0], dt)
            step_times[1] = dt if step_times[1] == 0.0 else 0.8 * step_times[1] + 0.2 * dt
        rate = state.tokens_per_step / dt
        tok_rate = rate if tok_rate is None else 0.9 * tok_rate + 0.1 * rate

        diverged = not math.isfinite(loss_val) or (state.step > 1 and loss_val > 2 * ln_vocab + 2)
        if diverged:
            status, message = "diverged", divergence_message(loss_val, state.step, cfg, start_loss)

        # Plan the schedule for the time budget from the measured speed.
        if ref_step is None and state.step >= start_step + 2:
            ref_step, ref_time = state.step, elapsed()
        # Re-plan at 5, 10, 20, 40, ... steps and at each evaluation; and when the plan runs out while more than
        # a tenth of the budget is left (a first plan made from slow warm-up steps or a busy moment was too short).
        at_plan_end = total_steps is not None and state.step >= total_steps
        early_end = at_plan_end and elapsed() + final_reserve() < 0.9 * (cfg.time_budget or 0)
        if (cfg.time_budget and ref_step is not None and state.step > ref_step
                and (state.step == plan_at or state.step % cfg.eval_interval == 0 or early_end)):
            if state.step == plan_at:
                plan_at = 2 * plan_at - start_step
            s_per_step = (elapsed() - ref_time) / (state.step - ref_step)
            left = cfg.time_budget - elapsed() - final_reserve()
            planned = state.step + max(1, int(left / s_per_step))
            if cfg.max_steps is not None:
                planned = min(planned, cfg.max_steps)
            if dinfo.enabled:
                p = torch.tensor([planned], device=state.device.device)
                dist.all_reduce(p, op=dist.ReduceOp.MIN)
                planned = int(p)
            total_steps = planned

        last = diverged or want_stop or over_time or (total_steps is not None and state.step >= total_steps)
        tokens = state.tokens_before + (state.step - start_step) * state.tokens_per_step
        rec = {"step": state.step, "train_loss": loss_val, "val_loss": None, "lr": state.optimizers[0].param_groups[0]["lr"],
               "grad_norm": float(grad_norm), "tokens_per_s": tok_rate, "elapsed_s": 0.0, "eta_s": None, "tokens": tokens}
        if last and not diverged:
            thorough = not want_stop  # a learner pressing Stop wants it to stop now, not in 5 seconds
            rec["val_loss"] = timed_eval("val", cfg.final_eval_batches if thorough else cfg.eval_batches)
            rec["train_eval_loss"] = timed_eval("train", cfg.eval_batches)
            rec["final"] = True
        elif not diverged and state.step % cfg.eval_interval == 0:
            rec["val_loss"] = timed_eval("val", cfg.eval_batches)
        if dinfo.is_main and cfg.sample_interval and not diverged and (state.step % cfg.sample_interval == 0 or last):
            rec["sample"] = generate_sample(state)
        rec["elapsed_s"] = state.elapsed_before + elapsed()
        if cfg.time_budget is not None:
            rec["eta_s"] = 0.0 if last else max(0.0, cfg.time_budget - elapsed())
        elif total_steps is not None and state.step > start_step:
            rec["eta_s"] = (total_steps - state.step) * elapsed() / (state.step - start_step)
        state.metrics.append(rec)
        publish(rec)
        if last:
            if want_stop and not diverged:
                status = "stopped"
            break

    summary = checkpoint.summarize_metrics(state.metrics)
    summary.update(params=state.model.num_params(), device=state.device.sentence, status=status, message=message)
    return TrainOutcome(status=status, message=message, summary=summary)


# ---------------------------------------------------------------------------------------------------------
# Saving


def save_run(state: TrainState, outcome: TrainOutcome | None, run_dir: Path | str, save_weights: bool = True) -> None:
    """Write the run folder (see engine.checkpoint): ckpt.pt (unless `save_weights` is False, e.g. after a
    divergence left NaN weights), config.json, metrics.jsonl and summary.json."""
    run_dir = Path(run_dir)
    model_config = asdict(state.model.config)
    if save_weights:
        payload = {
            "model": state.model.state_dict(),
            "model_config": model_config,
            "optimizers": [opt.state_dict() for opt in state.optimizers],
            "train_config": state.config.to_dict(),
            "tokenizer": state.tokenizer.to_dict(),
            "step": state.step,
            "elapsed_s": state.metrics[-1]["elapsed_s"] if state.metrics else 0.0,
            "tokens": state.metrics[-1].get("tokens", 0) if state.metrics else 0,
            "rng": state.generator.get_state(),
            "metrics": state.metrics,
        }
        checkpoint.save_checkpoint(run_dir, payload)
    if outcome is None:
        summary = checkpoint.summarize_metrics(state.metrics)
        summary.update(params=state.model.num_params(), device=state.device.sentence, status="running", message="")
    else:
        summary = outcome.summary
    config = {"train": state.config.to_dict(), "model": model_config, "tokenizer": state.tokenizer.kind,
              "device": state.device.sentence, "params": state.model.num_params()}
    checkpoint.write_run_files(run_dir, config, state.metrics, summary)


# ---------------------------------------------------------------------------------------------------------
# Command line: python -m engine.train --preset lesson --time-budget 60 --out runs/NAME


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = replace(PRESETS[args.preset])
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if key not in {f.name for f in fields(TrainConfig)}:
            raise SystemExit(f"--set: unknown setting {key!r}")
        overrides[key] = _parse_value(value)
    if args.time_budget is not None:
        overrides["time_budget"] = args.time_budget
        if args.max_steps is None:
            overrides["max_steps"] = None
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
        if args.time_budget is None:
            overrides["time_budget"] = None
    for name in ("device", "seed", "dtype"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return replace(config, **overrides)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m engine.train", description="Train a small GPT on a text file.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lesson")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a UTF-8 text file")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of wall clock")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/PRESET-TIME)")
    parser.add_argument("--resume", type=Path, default=None, help="a run folder to continue from")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field, e.g. lr=3e-3")
    parser.add_argument("--quiet", action="store_true", help="only the final JSON line")
    args = parser.parse_args(argv)

    config = config_from_args(args)
    dinfo = setup_distributed(config.device)
    say = print if (dinfo.is_main and not args.quiet) else (lambda *a, **k: None)
    text = args.corpus.read_text(encoding="utf-8")
    state = prepare(config, text, resume_from=args.resume, dist_info=dinfo)
    out = args.out or args.resume or REPO_ROOT / "runs" / f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    say(f"{state.device.sentence}; {state.model.num_params() / 1e6:.2f}M parameters; "
        f"{len(state.data.train):,} training tokens; vocab {state.tokenizer.vocab_size}")

    def show(rec: dict[str, Any]) -> None:
        if rec.get("val_loss") is None and "sample" not in rec and rec["step"] % 50:
            return
        parts = [f"step {rec['step']:5d}", f"loss {rec['train_loss']:.3f}"]
        if rec.get("val_loss") is not None:
            parts.append(f"val {rec['val_loss']:.3f}")
        parts.append(f"lr {rec['lr']:.2e}")
        if rec.get("tokens_per_s"):
            parts.append(f"{rec['tokens_per_s'] / 1000:.1f}k tok/s")
        parts.append(f"{rec['elapsed_s']:.1f}s")
        if rec.get("eta_s") is not None:
            parts.append(f"eta {rec['eta_s']:.0f}s")
        say(" | ".join(parts))
        if "sample" in rec:
            say("    sample: " + repr(rec["sample"][:120]))

    outcome = train_loop(state, on_record=show)
    if outcome.message:
        say(outcome.message)
    if dinfo.is_main:
        save_run(state, outcome, out, save_weights=outcome.status != "diverged")
    result = {
        "val_loss": outcome.summary["final_val_loss"],
        "train_loss": outcome.summary["final_train_loss"],
        "steps": outcome.summary["steps"],
        "tokens_per_s": outcome.summary["tokens_per_s"],
        "params": outcome.summary["params"],
        "device": outcome.summary["device"],
        "elapsed_s": outcome.summary["elapsed_s"],
        "status": outcome.status,
        "run_dir": str(out),
    }
    if dinfo.is_main:
        print(json.dumps(result), flush=True)
    if dinfo.enabled:
        dist.barrier()
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
