"""bf16 against fp16 on real numbers (lesson 9): which of a real gradient's entries a 16-bit format loses, what loss
scaling does about it, and why the weights an optimizer updates stay in float32.

A floating-point number is a sign, an exponent (its range) and a mantissa (its digits). float32 has 8 exponent and
23 mantissa bits; bfloat16 keeps float32's 8 exponent bits and only 7 mantissa bits (Kalamkar et al. 2019, "A Study
of BFLOAT16 for Deep Learning Training"); float16 has 10 mantissa bits but 5 exponent bits, so its smallest normal
number is about 6e-5 and anything below about 6e-8 becomes 0. Gradients are small, so fp16 training multiplies the
loss by 2^k before the backward pass and divides the gradients by 2^k afterwards: loss scaling (Micikevicius et al.
2018, "Mixed Precision Training"), which lifts small gradients above fp16's floor until the largest overflow.
The same paper keeps a float32 master copy of the weights: an update much smaller than a weight is rounded away
when added in 16 bits (`rounding_away`). The figures are read from torch.finfo, not written in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SCALE_EXPONENTS = tuple(range(0, 25))  # loss scales 2^0 .. 2^24 (fp16 training commonly starts at 2^16)
LR_FACTORS = (1.0, 0.1, 0.01)  # the peak learning rate, and the tenth and hundredth of it a decaying schedule reaches
HIST_STEP = 0.25  # histogram bins, in powers of ten


@dataclass(frozen=True)
class FloatFormat:
    """One floating-point format, from torch.finfo: its bits, range and digits."""

    name: str
    bits: int
    exponent_bits: int
    mantissa_bits: int
    smallest_normal: float  # below this the format keeps fewer digits (subnormal numbers) ...
    smallest_subnormal: float  # ... and below half of this it stores 0
    largest: float  # above this: inf
    eps: float  # the gap after 1.0: about how many significant digits the format keeps


def float_format(name: str) -> FloatFormat:
    """The format's figures, read from torch.finfo.

    >>> f = float_format("float16")
    >>> f.exponent_bits, f.mantissa_bits, f.largest, f"{f.smallest_normal:.3g}", f"{f.smallest_subnormal:.3g}"
    (5, 10, 65504.0, '6.1e-05', '5.96e-08')
    >>> float_format("bfloat16").exponent_bits, float_format("bfloat16").mantissa_bits
    (8, 7)
    """
    info = torch.finfo(DTYPES[name])
    mantissa = round(-math.log2(info.eps))
    return FloatFormat(name, info.bits, info.bits - 1 - mantissa, mantissa, float(info.smallest_normal),
                       float(info.smallest_normal * info.eps), float(info.max), float(info.eps))


@dataclass(frozen=True)
class Underflow:
    """What storing a gradient scaled by 2^k in fp16 and in bf16 does to its nonzero entries."""

    scale_exponent: int  # k: the loss (so every gradient) multiplied by 2^k
    nonzero: int  # the gradient's nonzero entries
    fp16_zero: int  # became 0 in fp16: that part of the update is lost
    fp16_subnormal: int  # kept, but below fp16's smallest normal number: fewer digits
    fp16_overflow: int  # became inf: the step has to be skipped (the scale was too big)
    bf16_zero: int
    bf16_overflow: int


def underflow(grad: torch.Tensor, scale_exponent: int = 0) -> Underflow:
    """Count how many of `grad`'s nonzero entries, times 2^scale_exponent, fp16 and bf16 flush to 0, keep as subnormal
    numbers, or overflow to inf.

    >>> g = torch.tensor([1e-3, 1e-6, 1e-9, 0.0])  # normal, subnormal and below fp16's floor
    >>> u = underflow(g)
    >>> u.nonzero, u.fp16_zero, u.fp16_subnormal, u.bf16_zero
    (3, 1, 1, 0)
    >>> u = underflow(g, 20)  # x 2^20: 1e-9 becomes 1e-3, 1e-3 becomes 1049, all normal
    >>> u.fp16_zero, u.fp16_subnormal, u.fp16_overflow
    (0, 0, 0)
    """
    g = grad.detach().float().flatten() * (2.0 ** scale_exponent)  # (N,)
    nonzero = g != 0
    h = g.to(torch.float16)  # (N,)
    b = g.to(torch.bfloat16)  # (N,)
    tiny = torch.finfo(torch.float16).smallest_normal
    return Underflow(
        scale_exponent, int(nonzero.sum()),
        fp16_zero=int(((h == 0) & nonzero).sum()),
        fp16_subnormal=int(((h != 0) & (h.abs() < tiny)).sum()),
        fp16_overflow=int(h.isinf().sum()),
        bf16_zero=int(((b == 0) & nonzero).sum()),
        bf16_overflow=int(b.isinf().sum()),
    )


def rounding_away(weights: torch.Tensor, update: torch.Tensor, dtype: str) -> int:
    """How many nonzero updates vanish when the weights are kept in `dtype`: w + Δ rounds back to w.

    Near a weight w a format can only step by about |w| x eps (bf16: 1/128 of w), so an update smaller than half that
    is rounded away, and a weight kept in bf16 stops learning from small steps. float32 master weights keep them.

    >>> w, d = torch.tensor([1.0, 1.0, 0.01]), torch.tensor([1e-3, 1e-2, 1e-3])
    >>> rounding_away(w, d, "bfloat16"), rounding_away(w, d, "float16"), rounding_away(w, d, "float32")
    (1, 0, 0)
    """
    dt = DTYPES[dtype]
    w = weights.detach().flatten().to(dt)  # (N,)
    d = update.detach().flatten().to(dt)  # (N,)
    return int(((w + d == w) & (update.flatten() != 0)).sum())


def spacing(x: float, dtype: str) -> float:
    """The gap between `x` and the next larger number in `dtype` (for x > 0, a normal number).

    >>> spacing(0.5, "bfloat16"), spacing(0.5, "float32") == 2 ** -24
    (0.00390625, True)
    """
    _, exp = math.frexp(abs(x))  # |x| = m * 2^exp, 0.5 <= m < 1
    return 2.0 ** (exp - 1) * float_format(dtype).eps


@dataclass(frozen=True)
class LostUpdates:
    """At one learning rate (a fraction of the peak), the share of one real step's updates each format loses."""

    lr_factor: float
    lost: dict[str, int]  # format -> updates rounded away
    total: int  # nonzero updates


@dataclass(frozen=True)
class RoundingExample:
    """One real weight and its real update: the float32 result, and the bf16 one that did not move."""

    name: str  # the parameter it belongs to
    weight: float
    update: float
    float32_after: float
    bf16_weight: float
    bf16_after: float
    bf16_spacing: float  # the gap between bf16 numbers near this weight


@dataclass(frozen=True)
class PrecisionView:
    """Mixed precision on one real step: the gradient's magnitudes, what fp16 and bf16 keep of it at each loss scale,
    and how many updates would round away if the weights were kept in 16 bits."""

    formats: list[FloatFormat]  # float32, bfloat16, float16
    hist_log10: list[float]  # left edge of each bin of log10|gradient|, HIST_STEP wide
    hist_counts: list[int]
    zero_entries: int  # exact zeros in the gradient (not in the histogram)
    underflow: list[Underflow]  # one per loss scale exponent in SCALE_EXPONENTS
    lost: list[LostUpdates]  # one per LR_FACTORS
    example: RoundingExample | None  # None when no update is rounded away in bf16


def magnitude_histogram(grad: torch.Tensor) -> tuple[list[float], list[int], int]:
    """Histogram of log10|g| over the nonzero entries in HIST_STEP bins: (left edges, counts, zero entries).

    >>> magnitude_histogram(torch.tensor([1.2e-3, 1.5e-3, 0.0, 0.02]))  # log10: -2.92, -2.82 and -1.7
    ([-3.0, -2.75, -2.5, -2.25, -2.0, -1.75], [2, 0, 0, 0, 0, 1], 1)
    """
    g = grad.detach().float().flatten()  # (N,)
    nonzero = g[g != 0]
    if nonzero.numel() == 0:
        return [], [], g.numel()
    logs = nonzero.abs().log10()  # (n,)
    lo = math.floor(float(logs.min()) / HIST_STEP) * HIST_STEP
    bins = torch.floor((logs - lo) / HIST_STEP).long()  # (n,)
    counts = torch.bincount(bins).tolist()
    edges = [round(lo + i * HIST_STEP, 6) for i in range(len(counts))]
    return edges, counts, g.numel() - nonzero.numel()


def precision_view(grad: torch.Tensor, weights: torch.Tensor, update: torch.Tensor, names: list[str],
                   sizes: list[int]) -> PrecisionView:
    """Show-me function: a real step's gradient (N,), the weights before it (N,) and its update (N,), all parameters
    flattened in one order; `names` and `sizes` say which parameter each stretch belongs to (for the example).

    The update is linear in the learning rate (AdamW and Muon alike: lr x direction, plus lr x decay x weight), so the
    update at a fraction f of the peak rate is f x the measured one."""
    edges, counts, zeros = magnitude_histogram(grad)
    lost = []
    for f in LR_FACTORS:
        scaled = update * f  # (N,)
        lost.append(LostUpdates(f, {name: rounding_away(weights, scaled, name) for name in DTYPES},
                                int((scaled != 0).sum())))
    w, d = weights.flatten(), update.flatten()  # (N,) each
    vanished = ((w.bfloat16() + d.bfloat16()) == w.bfloat16()) & (d != 0)  # (N,)
    example = None
    if bool(vanished.any()):
        i = int(torch.where(vanished, d.abs(), torch.zeros_like(d)).argmax())  # the largest update that vanished
        owner = names[int(torch.searchsorted(torch.tensor(sizes).cumsum(0), torch.tensor(i), right=True))]
        wi, di = float(w[i]), float(d[i])
        example = RoundingExample(owner, wi, di, float(w[i] + d[i]), float(w[i].bfloat16()),
                                  float(w[i].bfloat16() + d[i].bfloat16()), spacing(float(w[i].bfloat16()), "bfloat16"))
    return PrecisionView([float_format(n) for n in DTYPES], edges, counts, zeros,
                         [underflow(grad, k) for k in SCALE_EXPONENTS], lost, example)
