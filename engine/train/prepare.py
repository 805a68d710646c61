"""Setting up a run: device, tokenizer, data, model and optimizers, fresh or from a saved checkpoint.

    state = prepare(PRESETS["tiny"], text)      # everything the loop (engine.train.loop) needs, in one TrainState

Sources: AdamW (Loshchilov & Hutter 2019) with nanoGPT's weight-decay groups; Muon for the hidden weight matrices
(Keller Jordan 2024; engine.train.muon) with embeddings, norms and the head on AdamW, as in modded-nanogpt.
What can go wrong on someone else's hardware is decided here, once, and told to the learner in `state.notes`:
Muon orthogonalises in float32 where bf16 is not native; torch.compile is skipped for short runs and tried on one
batch here, so a compiler that fails means eager mode, not a failed run; on a CPU with native bf16 the precision
is measured on the run's own model and batch shape (engine.device.faster_precision). Under torchrun what each rank
measures or decides alone (precision, Muon's, compiling) is agreed in one collective, so every rank builds the same
optimizers and model. On CUDA the token array moves to the GPU, so batches are cut there. A resume puts each rank's
random state back (engine.train.rng).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.device import DeviceInfo, compile_blocker, cpu_sentence, faster_precision, get_device
from engine.load import checkpoint
from engine.post_training import lora
from engine.post_training.chat_template import grow_token_table, sft_tokenizer
from engine.post_training.dialogue_data import DialogueDataset
from engine.train import rng
from engine.train.config import TrainConfig
from engine.train.distributed import DistInfo, agree_min, agree_mins
from engine.train.finetune import fit_text
from engine.train.muon import Muon
from engine.transform.data import TextDataset
from engine.transform.model import GPT
from engine.transform.tokenization import CharTokenizer, Tokenizer, tokenizer_from_dict

# torch's global RNG is shared by all threads: hold this while seeding it and initialising a model, so two
# runs started at once in one process still get the weights their seed promises.
_init_lock = threading.Lock()

# Below this budget a run does not compile: compiling takes most of a minute on a GPU, and the kernels it fuses
# save a small model only part of its step time, so it pays back only in runs of a few minutes.
COMPILE_MIN_BUDGET_S = 120.0


@dataclass
class TrainState:
    """Everything a run holds in memory. `model` is the plain GPT; `train_model` may wrap it (compile, DDP);
    `eval_model` is what evaluation runs: the compiled model where there is one, never the DDP wrapper."""

    config: TrainConfig
    model: GPT
    train_model: nn.Module
    optimizers: list[torch.optim.Optimizer]
    data: TextDataset | DialogueDataset  # an SFT run's: whole exchanges, the loss on the answers
    tokenizer: Tokenizer
    device: DeviceInfo
    dist: DistInfo
    generator: torch.Generator  # draws the training batches
    step: int = 0  # optimizer steps done so far (continues across a resume)
    elapsed_before: float = 0.0  # wall-clock seconds of earlier segments of this run (before a resume)
    tokens_before: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what prepare() changed or skipped, in words for the learner
    original_data: TextDataset | None = None  # a fine-tune's old corpus: its val split is evaluated too
    finetune: dict[str, Any] | None = None  # a fine-tune's source and what fitting its text replaced (engine.train.finetune)
    eval_model: nn.Module | None = None  # None: the plain model
    adapters: lora.LoraAdapters | None = None  # a LoRA run's adapters (engine.post_training.lora): trained, merged on save

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's weights to save: a LoRA run's with its adapters merged in, so its checkpoint is a plain model."""
        return lora.merged_state_dict(self.model, self.adapters)

    @property
    def evaluator(self) -> nn.Module:
        return self.model if self.eval_model is None else self.eval_model

    @property
    def tokens_per_step(self) -> int:
        return self.config.batch_size * self.config.model.block_size * self.dist.world_size


def build_optimizers(model: GPT, config: TrainConfig, device: DeviceInfo,
                     adapters: nn.Module | None = None) -> list[torch.optim.Optimizer]:
    """AdamW (fused kernel where available) or Muon + AdamW. Each group remembers its peak lr in `base_lr`.

    Weight decay only on 2-D weights (matrices and embeddings), never on norms and biases (as nanoGPT does):
    shrinking a gain or a bias towards zero is not a useful prior. A LoRA run trains its `adapters` and what the
    model left trainable (its token table).
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if adapters is not None:
        params.update({f"lora.{n}": p for n, p in adapters.named_parameters()})
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
        # muon_split_qkv: the fused (3C, C) query-key-value weight orthogonalised as three (C, C) matrices
        splits = {p: 3 for n, p in params.items() if n.endswith("attn.c_attn.weight")} if config.muon_split_qkv else {}
        ns_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[config.muon_ns_dtype]
        optimizers.append(Muon(hidden, lr=config.muon_lr, weight_decay=config.weight_decay, momentum=0.95,
                               nesterov=True, ns_dtype=ns_dtype, splits=splits, batched=config.muon_batched))
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
    finetune_from: Path | str | None = None,
    original_text: str | None = None,
) -> TrainState:
    """Build everything a run needs: device, tokenizer, data, model, optimizers.

    `tokenizer` None -> a CharTokenizer of `text`. With `resume_from` (a run folder), weights, optimizer state,
    step count, tokenizer and metrics come from its checkpoint; `config` may change the run's length
    (max_steps, time_budget) and evaluation settings, not the model's shape.

    With `finetune_from` (a run folder) instead, only the weights, tokenizer and model shape come from it: a new
    run on `text` from step 0 with a fresh optimizer (engine.train.finetune); characters the tokenizer lacks are
    replaced and counted (`state.finetune`). `original_text` (the corpus the checkpoint learned from): its
    validation split is evaluated beside `text`'s at every evaluation.
    """
    if config.max_steps is None and config.time_budget is None:
        raise ValueError("A run needs an end: set max_steps or time_budget.")
    if resume_from is not None and finetune_from is not None:
        raise ValueError("A run either resumes a checkpoint or fine-tunes one, not both.")
    dist_info = dist_info or DistInfo()
    notes: list[str] = []
    device = get_device(config.device, config.dtype, dist_info.local_world_size, config.threads)

    source = resume_from if resume_from is not None else finetune_from
    ckpt = checkpoint.read_checkpoint(source) if source is not None else None
    if ckpt is not None:
        tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
        saved = TrainConfig.from_dict(ckpt["train_config"])  # refuses a run that used a dropped option
        # the checkpoint's model, its options included (one from before them has them off, as it was trained); this
        # run's dropout, and its table padding unless the checkpoint says (below)
        model = replace(saved.model, dropout=config.model.dropout, vocab_multiple=config.model.vocab_multiple)
        kept = {"optimizer": saved.optimizer} if resume_from is not None else {}  # a fine-tune starts a fresh one
        config = replace(config, model=model, **kept)
    if text is None:
        raise ValueError("prepare() needs the training text")
    if tokenizer is None:
        tokenizer = CharTokenizer.from_text(text)
    if config.sft:  # the chat template's special tokens join the vocabulary (engine.post_training.sft)
        tokenizer = sft_tokenizer(tokenizer, source)
    if config.lora_rank and dist_info.enabled:
        raise ValueError("A LoRA run trains in one process here: its adapters act through hooks DDP does not see.")
    finetune = _finetune_info(finetune_from, ckpt)
    original_data = None
    if finetune is not None:  # the checkpoint's tokenizer is fixed: fit the new text (and the old) to it
        fitted = fit_text(text, tokenizer)
        text, finetune = fitted.text, {**finetune, **fitted.report()}
        if fitted.replaced and finetune_from is not None:
            notes.append(fitted.sentence())
    if original_text is not None:
        original_data = TextDataset(fit_text(original_text, tokenizer).text, tokenizer)
        original_data.check_block_size(config.model.block_size)
    data = (DialogueDataset if config.sft else TextDataset)(text, tokenizer)
    data.check_block_size(config.model.block_size)

    if ckpt is not None and "vocab_multiple" in ckpt.get("model_config", {}):  # its table's rows
        config = replace(config, model=replace(config.model, vocab_multiple=ckpt["model_config"]["vocab_multiple"]))
    # resolved here, so the run's config says what its model has (the vocabulary, the GPU's padded table or none)
    config = replace(config, model=config.model_config(tokenizer.vocab_size, device.type))
    with _init_lock:
        torch.manual_seed(config.seed)  # every rank builds the same initial weights
        model = GPT(config.model)
    if ckpt is not None:  # an SFT run's table has rows for the special tokens its checkpoint may lack
        model.load_state_dict(grow_token_table(ckpt["model"], model) if config.sft else ckpt["model"])
    model.to(device.device)
    adapters = lora.attach(model, config.lora_rank, config.seed) if config.lora_rank else None
    if device.type == "cuda":
        data.to_device(device.device)  # no copy per batch; ~8 bytes per token, small beside any GPU's memory
        if original_data is not None:
            original_data.to_device(device.device)
    if config.dtype == "auto" and device.type == "cpu" and device.dtype == "bfloat16":
        device = replace(device, dtype=_cpu_precision(model, data, config))
        device = replace(device, sentence=cpu_sentence(device.threads, device.dtype))
    want_compile = device.compile if config.compile is None else config.compile
    if config.compile is None and want_compile and config.time_budget is not None \
            and config.time_budget < COMPILE_MIN_BUDGET_S:
        want_compile = False
        notes.append(f"No torch.compile for a run under {COMPILE_MIN_BUDGET_S:.0f} s: compiling would take "
                     "longer than it saves.")
    if dist_info.enabled:  # after each rank's own measurement: all ranks must build the same run
        device, config, want_compile = _agree(device, config, want_compile, notes)
    if config.optimizer == "muon" and config.muon_ns_dtype == "bfloat16" and not device.native_bf16:
        # bf16 is unsupported or emulated (slow) here: Muon's Newton-Schulz iterations run in float32 instead
        config = replace(config, muon_ns_dtype="float32")
        what = "GPU" if device.type == "cuda" else "Apple GPU" if device.type == "mps" else "device"
        notes.append(f"Muon orthogonalises its updates in float32 here: this {what} lacks fast bf16 arithmetic.")
    optimizers = build_optimizers(model, config, device, adapters)
    resuming = ckpt is not None and resume_from is not None  # a fine-tune's optimizer starts fresh
    if resuming and adapters is not None:  # its checkpoint holds merged weights: the saved moments fit no adapter
        notes.append("A LoRA run resumes from its merged weights with new adapters, their moments starting afresh.")
    elif resuming and len(ckpt["optimizers"]) == len(optimizers):
        for opt, sd in zip(optimizers, ckpt["optimizers"], strict=True):
            opt.load_state_dict(sd)
            for group in opt.param_groups:  # the new run's settings win over the saved peak lr
                group["base_lr"] = config.muon_lr if isinstance(opt, Muon) else config.lr
    elif resuming:  # saved with other optimizers than this run builds: their moments cannot be reused
        notes.append("The saved optimizer state does not fit this run's optimizers, so their moments start afresh.")

    train_model: nn.Module = model
    if want_compile:
        train_model, note = _compile_or_eager(model, data, config, device, dist_info)
        notes.append(note)
    eval_model = train_model if train_model is not model else None  # evaluate with the compiled model too
    if dist_info.enabled:
        ids = [dist_info.local_rank if device.index is None else device.index] if device.type == "cuda" else None
        # no buffer sync before each forward: our only buffer is the constant causal mask
        train_model = nn.parallel.DistributedDataParallel(train_model, device_ids=ids, forward_sync_buffers=False)

    with _init_lock:
        # Dropout masks differ per rank (nanoGPT offsets its seed by the rank), drawn only after the identical
        # initial weights: ranks with the same masks on different batches would regularise less than one big batch.
        torch.manual_seed(config.seed + dist_info.rank)
        generator = torch.Generator().manual_seed(config.seed + dist_info.rank)  # each rank draws its own batches
        if resuming:  # the batches and dropout masks go on where they stopped
            note = rng.restore(ckpt.get("rng"), generator, device, dist_info, config.seed, int(ckpt["step"]))
            notes.extend([note] if note else [])
    device = replace(device, sentence=_sentence(device, dist_info, notes))
    state = TrainState(config=config, model=model, train_model=train_model, optimizers=optimizers, data=data,
                       tokenizer=tokenizer, device=device, dist=dist_info, generator=generator, notes=notes,
                       original_data=original_data, finetune=finetune, eval_model=eval_model,
                       adapters=adapters)
    if resuming:
        state.step = int(ckpt["step"])
        state.elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        state.tokens_before = int(ckpt.get("tokens", 0))
        state.metrics = list(ckpt.get("metrics", []))
    return state


def _cpu_precision(model: GPT, data: TextDataset, config: TrainConfig) -> str:
    """bf16 autocast or float32 for this run on this CPU, timed on the run's own model and batch shape (a forward
    and backward each, interleaved; engine.device.faster_precision). The gradients of the tries are discarded and
    the batch has its own generator, so the run's weights and batches are those its seed promises."""
    g = torch.Generator().manual_seed(config.seed + 30_000)
    x, y = data.get_batch("train", config.batch_size, config.model.block_size, g, "cpu")  # (B, T) each
    m = model.config
    key = (m.n_layer, m.n_head, m.n_embd, m.block_size, config.batch_size, m.vocab_size, m.qk_norm, m.rope,
           torch.get_num_threads())

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(x, y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return faster_precision(step, key)


def _finetune_info(finetune_from: Path | str | None, ckpt: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where a fine-tune starts: the source folder and its step. A resumed fine-tune keeps what its own
    checkpoint says (so its text is fitted the same way again); any other run is no fine-tune (None)."""
    if finetune_from is not None and ckpt is not None:
        return {"from": str(finetune_from), "from_step": int(ckpt.get("step", 0))}
    return dict(ckpt["finetune"]) if ckpt is not None and ckpt.get("finetune") else None


def _agree(device: DeviceInfo, config: TrainConfig, want_compile: bool,
           notes: list[str]) -> tuple[DeviceInfo, TrainConfig, bool]:
    """Under torchrun, what each rank measured or decided alone, agreed in one all_reduce (each a yes only if every
    rank says yes): bf16 autocast (the CPU speed probe is measured per process), Muon's bf16 orthogonalisation
    (a device without native bf16 runs it in float32), Muon itself, and trying torch.compile. Ranks training at
    different precisions, with different optimizers or one compiled and one not would drift apart or wait in
    different collectives.

    Why agree rather than skip the probe under DDP: a multi-host CPU run whose machines all have fast bf16
    keeps it, and one rank without it (a slower, emulating CPU) turns it off for all instead of slowing all.
    """
    bf16 = int(device.dtype == "bfloat16") if config.dtype == "auto" else 1  # asked for: the same everywhere
    muon = config.optimizer == "muon"
    all_bf16, native, all_muon, compile_ = agree_mins(
        [bf16, int(device.native_bf16), int(muon), int(want_compile)], device.device)
    if not all_bf16 and device.dtype == "bfloat16":
        device = replace(device, dtype="float32")
    if not native and device.native_bf16:
        device = replace(device, native_bf16=False)
    if muon and not all_muon:
        config = replace(config, optimizer="adamw")
        notes.append("Another process of this run could not use Muon, so every process trains with AdamW.")
    return device, config, bool(compile_)


def _compile_or_eager(model: GPT, data: TextDataset, config: TrainConfig, device: DeviceInfo,
                      dist_info: DistInfo) -> tuple[nn.Module, str]:
    """torch.compile the model and run one forward and backward now, so a failure shows here, not mid-run.

    torch.compile is lazy: it returns at once and compiles (and fails: no C compiler, no Triton, an unsupported
    GPU) at the first call. So it is not tried where the machine lacks what building kernels needs
    (engine.device.compile_blocker), and elsewhere it is tried on one batch here (a training step, then an
    evaluation forward, each its own graph): a failure falls back to the eager model, which always works, and the
    sentence says why. The gradients of the try are discarded, and its batch comes from its own generator, so the
    run's batches are the ones its seed promises. Under torchrun the ranks agree: compiled only if every rank
    compiled. The try runs on the plain compiled module (DDP wraps it afterwards), so the compiled graph is not
    split at DDP's gradient buckets; for models of this size that overlap matters little.

    Returns the module to train and a sentence for the learner.
    """
    t0 = time.perf_counter()
    blocker = compile_blocker()
    compiled: nn.Module = model
    error = f"{blocker}, which it needs to build its kernels" if blocker else ""
    if not blocker:
        try:
            compiled = torch.compile(model)
            x, y = data.get_batch("train", config.batch_size, config.model.block_size,
                                  torch.Generator().manual_seed(config.seed + 20_000), device.device)  # (B, T) each
            with device.autocast():
                _, loss = compiled(x, y)
            loss.backward()
            # evaluation runs the compiled model too, in eval mode under inference_mode: another graph, compiled
            # here as well so its minute of compiling is not paid inside the training clock at the first evaluation
            compiled.eval()
            with torch.inference_mode(), device.autocast():
                compiled(x, y)
            compiled.train()
        except Exception as err:  # noqa: BLE001 - compile is an optimisation; eager mode always works
            first_line = (str(err).strip().splitlines() or [""])[0][:160]
            error = f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__
        finally:
            model.zero_grad(set_to_none=True)
            model.train()
    ok = not error
    if dist_info.enabled:
        ok = bool(agree_min(int(ok), device.device))
    seconds = time.perf_counter() - t0
    if ok:
        return compiled, f"Compiled with torch.compile in {seconds:.0f} s, before the training clock started."
    if blocker:
        return model, f"No torch.compile here: {error}, so this run trains without it (eager mode)."
    if error:
        return model, f"torch.compile failed here ({error}), so this run trains without it (eager mode)."
    return model, "torch.compile failed on another process of this run, so every process trains without it."


def _sentence(device: DeviceInfo, dist_info: DistInfo, notes: list[str]) -> str:
    """The device sentence the learner reads, with this run's notes after it."""
    sentence = device.sentence
    if dist_info.enabled and device.type == "cuda":
        sentence = f"Training on {dist_info.world_size} GPUs ({device.name}), {device.dtype}"
    elif dist_info.enabled:
        threads = f"{device.threads} thread" + ("s" if device.threads > 1 else "")
        sentence = f"Training on CPU, {dist_info.world_size} processes x {threads}"
        sentence += ", bf16" if device.dtype == "bfloat16" else ""
    return " ".join([sentence + ("." if notes else ""), *notes])
