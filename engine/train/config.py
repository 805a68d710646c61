"""What defines a training run: `TrainConfig` (a plain dataclass holding the model's `GPTConfig` and how to train it)
and the named presets the course and the CLI use.

Kept apart from the loop so the UI, the content validator's limits and the command line can read a preset
without building a model. A run folder stores the config flat (`to_dict`: the model's fields beside the training
ones), as every run folder has since the first; `from_dict` reads that and the nested form, so old checkpoints and
the reference model load as they were trained. Where the settings come from: Karpathy's nanoGPT (shakespeare_char
config) for the model and AdamW settings; docs/training-notes.md for how the `lesson` preset was tuned on 2 CPU
cores, and which options were measured and dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from engine.transform.model import DROPPED_OPTIONS, GPTConfig, refuse_dropped

# Training options measured and dropped (docs/training-notes.md), each with the value that meant "off". The WSD
# schedule's cooldown_frac and the warm-up's muon_momentum_start did nothing without these, so they are ignored.
DROPPED_TRAINING_OPTIONS: dict[str, Any] = {"lr_schedule": "cosine", "muon_momentum_warmup": 0}
MODEL_FIELDS = frozenset(f.name for f in fields(GPTConfig))


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are the `lesson` preset's (see PRESETS), except its options
    (rotary embeddings, QK-norm, Muon's split Q/K/V, the cosine down to zero), which default to off: a checkpoint
    saved before they existed lacks them, and `from_dict` must rebuild the run it was; and its intervals counted
    in seconds, off too, so a config built by hand counts in steps (reproducible)."""

    # the model's shape: 3 layers x 4 heads x 128 wide, 64 tokens of context. Its vocab_size comes from the
    # tokenizer when the model is built (model_config); vocab_multiple None pads the table to 64 rows on CUDA only.
    model: GPTConfig = field(default_factory=lambda: GPTConfig(n_layer=3))
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
    # Muon's options (engine.train.muon)
    muon_split_qkv: bool = False  # orthogonalise the fused Q, K, V weight as three matrices
    muon_ns_dtype: str = "bfloat16"  # Newton-Schulz precision, "bfloat16" or "float32" (prepare switches to float32
    # on a device without native bf16)
    muon_batched: bool = True  # orthogonalise same-shape matrices together
    # how long
    max_steps: int | None = None
    time_budget: float | None = 60.0  # seconds of wall clock, evaluation included
    # evaluation and samples
    eval_interval: int = 100  # estimate validation loss every this many steps ...
    eval_batches: int = 8  # ... over this many batches (cheap: evaluation must not eat the budget)
    final_eval_batches: int = 50  # the end-of-run estimate, thorough enough to compare runs
    eval_points: int | None = None  # at least this many estimates per run (closer than eval_interval if it is short)
    sample_interval: int = 200  # generate a text sample every this many steps (and at step 0)
    # Counted in seconds instead (engine.train.intervals), each replacing its step interval when set and the run
    # has a time budget: it then evaluates, samples and records as often on a GPU as on a CPU, and its page and
    # folder stay the same size. A run bounded by max_steps alone counts in steps (reproducible).
    eval_every_s: float | None = None  # evaluate every this many seconds (closer if eval_points asks for more)
    sample_every_s: float | None = None  # generate a text sample every this many seconds
    record_every_s: float | None = None  # publish a step's record at most this often (None: every step's)
    sample_tokens: int = 80
    sample_prompt: str = "\n"
    early_stop_patience: int | None = None  # stop when val loss has not improved for this many evaluations
    # reproducibility and hardware
    seed: int = 1337
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N" (GPU N) or "mps"
    dtype: str = "auto"  # "auto", "float32" or "bfloat16" (see engine.device)
    compile: bool | None = None  # torch.compile: None = the device's rule (CUDA, runs of 120 s or more); True/False force
    threads: int | None = None  # CPU threads; None = one per physical core
    readback_every: int | None = None  # read loss and gradient norm back every k steps; None: 1 on a CPU, 16 on CUDA
    # after pre-training (engine.post_training): a fine-tune on templated exchanges, the loss on the answers only,
    # with the template's special tokens added to the vocabulary; and LoRA adapters of this rank (0: every weight)
    sft: bool = False
    lora_rank: int = 0

    def model_config(self, vocab_size: int, device_type: str = "cpu") -> GPTConfig:
        """The model to build: `model` with the tokenizer's `vocab_size`, its table padded to a multiple of 64 rows
        on CUDA unless `model.vocab_multiple` says otherwise. `device_type`: where it will train."""
        multiple = self.model.vocab_multiple
        if multiple is None:
            multiple = 64 if device_type == "cuda" else 1
        return replace(self.model, vocab_size=vocab_size, vocab_multiple=multiple)

    def with_changes(self, **changes: Any) -> TrainConfig:
        """This config with some settings changed, each named as in the flat form (a model field or a training one).

        >>> c = PRESETS["tiny"].with_changes(n_layer=3, lr=1e-3)
        >>> c.model.n_layer, c.model.n_embd, c.lr
        (3, 32, 0.001)
        """
        model = {k: v for k, v in changes.items() if k in MODEL_FIELDS}
        train = {k: v for k, v in changes.items() if k not in MODEL_FIELDS}
        return replace(self, model=replace(self.model, **model), **train)

    def to_dict(self) -> dict[str, Any]:
        """The flat form a run folder stores: the model's fields (vocab_size left out: the tokenizer's) first, then
        the training settings."""
        model = {k: v for k, v in asdict(self.model).items() if k != "vocab_size"}
        return {**model, **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From a saved config: the flat form (`to_dict`, every run folder's) or the model's fields under "model".

        Keys this version does not know are ignored, so old checkpoints stay loadable; a run that turned on an
        option since dropped is refused with a ValueError that says which (ignoring it would rebuild another run).

        >>> old = {"n_layer": 2, "n_embd": 64, "lr": 1e-3, "mlp_act": "gelu", "lr_schedule": "cosine"}
        >>> c = TrainConfig.from_dict(old)
        >>> c.model.n_layer, c.model.n_embd, c.model.n_head, c.lr
        (2, 64, 4, 0.001)
        >>> TrainConfig.from_dict(c.to_dict()) == c == TrainConfig.from_dict(asdict(c))
        True
        """
        nested = data.get("model")
        flat = {**data, **(asdict(nested) if isinstance(nested, GPTConfig) else nested or {})}
        refuse_dropped(flat, {**DROPPED_OPTIONS, **DROPPED_TRAINING_OPTIONS})
        model = GPTConfig.from_dict({**asdict(cls().model), **{k: v for k, v in flat.items() if k in MODEL_FIELDS}})
        train = {f.name for f in fields(cls)} - {"model"}
        return cls(model=model, **{k: v for k, v in flat.items() if k in train})


PRESETS: dict[str, TrainConfig] = {
    # For tests: a toy model that learns something in a few dozen steps, well under a second on a CPU.
    "tiny": TrainConfig(
        model=GPTConfig(n_layer=2, n_head=2, n_embd=32,  # ~27k parameters
                        block_size=16),  # a short context: toy batches
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
    # Muon + AdamW, 60 s. Each option below was measured side by side with the others that were dropped
    # (docs/training-notes.md).
    "lesson": TrainConfig(
        model=GPTConfig(n_layer=3,
                        rope=True,  # rotary position embeddings: attention gets relative positions from step one
                        qk_norm=True),  # queries and keys RMS-normalised: attention scores stay bounded
        muon_split_qkv=True,  # Muon orthogonalises Q, K and V apart, as if they were three matrices
        min_lr_frac=0.0,  # the cosine decays to zero rather than a tenth of the peak
        # counted in seconds, so a GPU's thousands of steps a minute make the same page as a CPU's: about every
        # 100 and 200 of the CPU's steps (docs/training-notes.md), and every CPU step's record (each takes more
        # than 50 ms there), at most 20 a second on a GPU
        eval_every_s=5.0, sample_every_s=10.0, record_every_s=0.05,
    ),
    # For a CUDA GPU: nanoGPT's shakespeare_char model (10.7M parameters; what it reaches: docs/training-notes.md).
    "gpu": TrainConfig(
        model=GPTConfig(n_layer=6, n_head=6, n_embd=384,  # deeper and wider: a GPU does this in minutes
                        block_size=256,  # a longer context: the GPU has the memory and the speed
                        dropout=0.2),  # big model, small corpus: it would overfit without dropout
        batch_size=64,
        optimizer="adamw",
        lr=1e-3,  # larger models want smaller steps
        warmup_steps=100,
        max_steps=5000, time_budget=None,
        eval_interval=250, eval_batches=100, final_eval_batches=200,
        sample_interval=500, sample_tokens=200,
    ),
}
