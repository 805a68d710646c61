"""What training costs: parameters, FLOPs, this machine's peak, utilisation, money, energy, and the optimal split.

Every function returns plain data (dataclasses) for a page to draw; the chips and published models it prices
against live in `data/*.yaml` (read by `engine.cost.catalogue`). Sources:
- parameters are counted as `engine.transform.model.GPT` builds them, the token embedding tied with the output
  head (Press & Wolf 2017), so the count equals `sum(p.numel() for p in GPT(cfg).parameters())`;
- training FLOPs per token ~ 6N: Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Table 1, plus the
  output head and attention as nanoGPT's `estimate_mfu` counts them (github.com/karpathy/nanoGPT, model.py, after
  PaLM, Chowdhery et al. 2022, appendix B), so our utilisation compares with nanoGPT's and PaLM's;
- compute-optimal training, ~20 tokens per parameter with C = 6ND: Hoffmann et al. 2022, "Training
  Compute-Optimal Large Language Models" ("Chinchilla").
docs/architecture.md ("Counting FLOPs") says how the terms differ from Kaplan's.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from engine.cost.catalogue import Accelerator, accelerator
from engine.transform.model import GPTConfig

CHINCHILLA_TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022


# ---------------------------------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class ParameterCount:
    """Where a GPT's parameters are. `token_embedding` is also the output head (tied): counted once."""

    token_embedding: int  # V * C
    position_embedding: int  # T * C
    attention: int  # all layers: 4 C^2 (q, k, v, output projection) + 4C biases
    mlp: int  # all layers: 8 C^2 (C -> 4C -> C) + 5C biases
    layer_norms: int  # two per layer and the final one: C weights (+ C biases) each
    total: int
    non_embedding: int  # total minus both embeddings: Kaplan's N

    def rows(self) -> list[dict[str, Any]]:
        """One row per part with its share of the total, for a table or a bar."""
        parts = ("token_embedding", "position_embedding", "attention", "mlp", "layer_norms")
        return [{"part": k, "parameters": getattr(self, k), "share": getattr(self, k) / self.total} for k in parts]


def count_parameters(config: GPTConfig) -> ParameterCount:
    """Count a GPT's parameters from its config, part by part, without building it.

    One layer, C = 4, T = 2, V = 3: V*C + T*C + 12 C^2 + 3 LayerNorms x C = 12 + 8 + 192 + 12 = 224.

    >>> count_parameters(GPTConfig(n_layer=1, n_head=1, n_embd=4, block_size=2, vocab_size=3)).total
    224
    >>> p = count_parameters(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65))
    >>> p.total, p.non_embedding
    (27328, 24736)
    """
    C, L, b = config.n_embd, config.n_layer, 1 if config.bias else 0
    attention = L * (4 * C * C + b * 4 * C)  # c_attn C x 3C (+3C), c_proj C x C (+C)
    mlp = L * (8 * C * C + b * 5 * C)  # c_fc C x 4C (+4C), c_proj 4C x C (+C)
    layer_norms = (2 * L + 1) * (1 + b) * C
    token, position = config.vocab_size * C, config.block_size * C
    total = token + position + attention + mlp + layer_norms
    return ParameterCount(token, position, attention, mlp, layer_norms, total, total - token - position)


# ---------------------------------------------------------------------------------------------- FLOPs

@dataclass(frozen=True)
class FlopsPerToken:
    """Training FLOPs (forward + backward) per token, by where they are spent."""

    dense: int  # 6 * N_non_embedding (Kaplan)
    head: int  # 6 * n_embd * vocab_size: the output projection (the tied embedding)
    attention: int  # 12 * n_layer * n_embd * block_size (PaLM / nanoGPT)
    total: int


def flops_per_token(config: GPTConfig) -> FlopsPerToken:
    """Training FLOPs per token; the total equals nanoGPT's estimate_mfu numerator per token.

    >>> f = flops_per_token(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65))
    >>> f.dense, f.head, f.attention, f.total
    (148416, 12480, 12288, 173184)
    """
    dense = 6 * count_parameters(config).non_embedding
    head = 6 * config.n_embd * config.vocab_size
    attention = 12 * config.n_layer * config.n_embd * config.block_size
    return FlopsPerToken(dense, head, attention, dense + head + attention)


def training_flops(config: GPTConfig, tokens: float) -> float:
    """Total training FLOPs for `tokens` tokens: per-token FLOPs x tokens.

    >>> training_flops(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65), 1_000_000)
    173184000000.0
    """
    return float(flops_per_token(config).total) * tokens


@dataclass(frozen=True)
class RunCompute:
    """A run's compute so far, from its latest metrics record."""

    flops_per_token: int
    tokens: int
    flops: float  # so far
    achieved_flops_per_s: float | None  # per-token FLOPs x the training steps' token rate
    average_flops_per_s: float | None  # FLOPs so far / wall clock (evaluation and samples included)
    peak_flops_per_s: float | None
    mfu: float | None  # achieved / peak: model FLOPs utilisation


def run_compute(config: GPTConfig, metrics: Mapping[str, Any], peak_flops_per_s: float | None = None) -> RunCompute:
    """From a run's model config and a metrics record (engine.train.loop: tokens, tokens_per_s, elapsed_s).

    `tokens_per_s` is the loop's smoothed rate of the training steps alone, so `achieved` is the step's
    throughput; `average` spreads the FLOPs over all the wall time, evaluations included, and is lower.

    >>> cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65)
    >>> r = run_compute(cfg, {"tokens": 10_000, "tokens_per_s": 5_000.0, "elapsed_s": 4.0}, peak_flops_per_s=1e10)
    >>> r.flops, r.achieved_flops_per_s, r.average_flops_per_s, round(r.mfu, 4)
    (1731840000.0, 865920000.0, 432960000.0, 0.0866)
    """
    per_token = flops_per_token(config).total
    tokens = int(metrics.get("tokens") or 0)
    flops = float(per_token) * tokens
    rate = metrics.get("tokens_per_s")
    achieved = None if rate is None else float(per_token) * float(rate)
    elapsed = metrics.get("elapsed_s")
    average = flops / float(elapsed) if elapsed else None
    return RunCompute(per_token, tokens, flops, achieved, average, peak_flops_per_s,
                      mfu(achieved, peak_flops_per_s) if achieved is not None and peak_flops_per_s else None)


def mfu(achieved_flops_per_s: float, peak_flops_per_s: float) -> float:
    """Model FLOPs utilisation: the share of the peak the model's useful arithmetic reached.

    >>> mfu(40e12, 100e12)
    0.4
    """
    if peak_flops_per_s <= 0:
        raise ValueError(f"peak FLOP/s must be positive, not {peak_flops_per_s}")
    return achieved_flops_per_s / peak_flops_per_s


# ---------------------------------------------------------------------------------------------- peak probe

@dataclass(frozen=True)
class PeakProbe:
    """This device's practical peak, measured with square float32 matmuls."""

    size: int  # n of the n x n matrices
    repeats: int
    seconds: list[float]  # one per timed matmul
    median_s: float
    flops_per_s: float  # 2 n^3 / median
    device: str
    threads: int


def probe_peak_flops(size: int = 1024, repeats: int = 7, budget_s: float = 1.5, device: str = "cpu") -> PeakProbe:
    """Time `repeats` (n x n) @ (n x n) float32 matmuls (2 n^3 FLOPs each) and take the median.

    One warm-up matmul first (allocation, kernel choice); stops early once `budget_s` is spent, keeping at least
    one timing. A matmul is the best case for the hardware, so this is the ceiling a model can approach, not reach.
    """
    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=g).to(dev)
    b = torch.randn(size, size, generator=g).to(dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    start = time.perf_counter()
    with torch.no_grad():
        a @ b  # warm-up
        sync()
        seconds: list[float] = []
        while len(seconds) < repeats and (not seconds or time.perf_counter() - start < budget_s):
            t = time.perf_counter()
            a @ b
            sync()
            seconds.append(time.perf_counter() - t)
    median = statistics.median(seconds)
    return PeakProbe(size, len(seconds), seconds, median, 2 * size**3 / median, str(dev), torch.get_num_threads())


# ---------------------------------------------------------------------------------------------- pricing

@dataclass(frozen=True)
class RunPrice:
    """What training `parameters` for `tokens` would take on `count` accelerators at a given utilisation."""

    accelerator: str
    count: int
    flops: float
    utilisation: float
    gpu_hours: float  # accelerator-hours, all chips together
    wall_hours: float
    dollars: float | None  # None: the catalogue has no price for this chip
    energy_kwh: float | None  # None: no power figure
    co2_kg: float | None


def price_run(
    parameters: float,
    tokens: float,
    chip: str | Accelerator,
    count: int = 1,
    utilisation: float = 0.4,
    pue: float = 1.0,
    grid_g_per_kwh: float = 400.0,
    flops: float | None = None,
    precision: str = "16bit",
) -> RunPrice:
    """Price a training run: compute C = 6 N D (or `flops` if given), at `utilisation` of the chips' peak.

    `pue` (power usage effectiveness: the data centre's total power / the chips' power, 1.1-1.6 typically)
    scales the energy; `grid_g_per_kwh` is the grid's carbon intensity (a few tens of grams for hydro or nuclear,
    several hundred for coal-heavy grids). `precision`: "16bit" or "fp32" peak.

    >>> r = price_run(124e6, 2.5e9, "a100_40gb", count=1, utilisation=0.4)
    >>> round(r.gpu_hours, 2), round(r.dollars, 2), round(r.energy_kwh, 2)
    (4.14, 5.34, 1.66)
    """
    chip = accelerator(chip) if isinstance(chip, str) else chip
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], not {utilisation}")
    if pue < 1:
        raise ValueError(f"PUE is at least 1 (all power reaching the chips), not {pue}")
    peak_tflops = {"16bit": chip.tflops_16bit, "fp32": chip.tflops_fp32}[precision]
    if peak_tflops is None:
        raise ValueError(f"{chip.id} has no published {precision} peak")
    total = 6.0 * parameters * tokens if flops is None else float(flops)
    gpu_hours = total / (peak_tflops * 1e12 * utilisation) / 3600
    dollars = None if chip.price_usd_per_hour is None else gpu_hours * chip.price_usd_per_hour
    energy = None if chip.power_w is None else gpu_hours * chip.power_w / 1000 * pue
    co2 = None if energy is None else energy * grid_g_per_kwh / 1000
    return RunPrice(chip.id, count, total, utilisation, gpu_hours, gpu_hours / count, dollars, energy, co2)


# ---------------------------------------------------------------------------------------------- scaling

@dataclass(frozen=True)
class ComputeOptimal:
    """Hoffmann et al.'s split of a compute budget: N parameters trained on D = r N tokens, 6 N D = C."""

    flops: float
    parameters: float
    tokens: float
    tokens_per_parameter: float


def compute_optimal(flops: float, tokens_per_parameter: float = CHINCHILLA_TOKENS_PER_PARAM) -> ComputeOptimal:
    """Split a budget C: N = sqrt(C / (6 r)), D = r N (r ~ 20, Chinchilla).

    Chinchilla's own budget gives back Chinchilla (70B parameters, 1.4T tokens):

    >>> s = compute_optimal(5.76e23)
    >>> f"{s.parameters:.3g} parameters, {s.tokens:.3g} tokens"
    '6.93e+10 parameters, 1.39e+12 tokens'
    """
    if flops <= 0 or tokens_per_parameter <= 0:
        raise ValueError("the budget and the tokens per parameter must be positive")
    n = math.sqrt(flops / (6 * tokens_per_parameter))
    return ComputeOptimal(flops, n, tokens_per_parameter * n, tokens_per_parameter)
