"""What defines a training run: `TrainConfig` (a plain dataclass) and the named presets the course and the CLI use.

Kept apart from the loop so the UI, the content validator's limits and the command line can read a preset
without building a model. Where the settings come from: Karpathy's nanoGPT (shakespeare_char config) for the
model and AdamW settings; docs/training-notes.md for how the `lesson` preset was tuned on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.transform.model import GPTConfig


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are the `lesson` preset's (see PRESETS), except the recipe
    options of issue 16 (model and Muon options, the schedule's shape), which default to off: a checkpoint saved
    before they existed lacks them, and `from_dict` must rebuild the run it was."""

    # model shape (vocab_size comes from the tokenizer)
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64  # context length in tokens
    dropout: float = 0.0
    bias: bool = False
    # model options (engine.transform.model.GPTConfig; docs/training-notes.md says which the lesson preset uses and why)
    mlp_act: str = "gelu"  # "gelu" or "relu2"
    zero_init_proj: bool = False  # projections into the residual stream start at zero
    qk_norm: bool = False  # RMS-normalised queries and keys
    rope: bool = False  # rotary position embeddings (beside the learned ones)
    logit_softcap: float = 0.0  # > 0: logits soft-capped at +-this
    attn_scale: float = 0.0  # > 0: attention scores scaled by this instead of 1/sqrt(head size)
    vocab_multiple: int | None = None  # embedding rows rounded up to a multiple of this; None = 64 on CUDA, else 1
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
    lr_schedule: str = "cosine"  # "cosine": warm-up, cosine decay; "wsd": warm-up, stable, linear cool-down
    cooldown_frac: float = 0.4  # "wsd": the last this fraction of the run decays linearly to min_lr_frac
    # Muon's options (engine.train.muon)
    muon_split_qkv: bool = False  # orthogonalise the fused Q, K, V weight as three matrices
    muon_momentum_warmup: int = 0  # steps over which Muon's momentum rises from muon_momentum_start to 0.95
    muon_momentum_start: float = 0.85
    muon_ns_dtype: str = "bfloat16"  # Newton-Schulz precision, "bfloat16" or "float32" (bf16 measured faster on CPU too)
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

    def model_config(self, vocab_size: int, device_type: str = "cpu") -> GPTConfig:
        """The model's shape. `device_type`: where it will train (a padded table only on CUDA, see vocab_multiple)."""
        multiple = self.vocab_multiple if self.vocab_multiple is not None else (64 if device_type == "cuda" else 1)
        return GPTConfig(block_size=self.block_size, vocab_size=vocab_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout, bias=self.bias,
                         mlp_act=self.mlp_act, zero_init_proj=self.zero_init_proj, qk_norm=self.qk_norm,
                         rope=self.rope, logit_softcap=self.logit_softcap, attn_scale=self.attn_scale,
                         vocab_multiple=multiple)

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
    # Muon + AdamW, 60 s; rotary position embeddings, QK-norm, Muon orthogonalising Q, K and V apart, and the cosine
    # down to zero (issue 16: each measured side by side, the other candidates dropped; docs/training-notes.md).
    "lesson": TrainConfig(rope=True, qk_norm=True, muon_split_qkv=True, min_lr_frac=0.0),
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
