"""Lesson 9's mixed-precision section, drawn: what fp16 does to each size of a real gradient (a histogram coloured by
fate, with fp16's limits), the underflow counts at a loss scale, the three formats side by side, and the updates that
round away in 16-bit weights. Plain functions of `engine.cost.mixed_precision`'s data, used by
ui/widgets/training_memory.py; and the colours of the parts of training memory (weights, gradients, optimizer state),
shared with the picture of splitting a model over GPUs (ui/widgets/parallelism_map.py)."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from engine import number_format as fmt
from engine.cost.mixed_precision import HIST_STEP, PrecisionView, Underflow, float_format

# Every colour at least 3:1 against the light (#ffffff) and the dark (#171614) background
# (tests/ui/test_chart_accessibility.py's rule; tests/ui/test_training_memory.py checks these).
FATE_COLOURS = {"becomes 0 in fp16": "#d81b60", "subnormal in fp16: fewer digits": "#e4572e",
                "kept in fp16": "#2e86c1", "overflows fp16": "#7e57c2"}
LIMIT_COLOUR = "#808b96"
LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, x=0, traceorder="normal")  # above the bars, in stack order

# Every colour at least 3:1 against the light (#ffffff) and the dark (#171614) background
# (tests/ui/test_chart_accessibility.py's rule; tests/ui/test_training_memory.py checks these).
PART_COLOURS = {
    "weights": "#2e86c1", "master weights": "#7e57c2", "gradients": "#2a9d8f", "AdamW": "#e4572e",
    "Muon": "#b5651d", "activations": "#808b96", "16-bit weight copies": "#d81b60",
}


def stack_order(part: str) -> int:
    """Where a part sits in a stacked bar: weights, gradients, master weights, optimizer state, activations.

    >>> sorted(["activations", "Muon momentum", "master weights (float32)", "weights (16-bit)"], key=stack_order)
    ['weights (16-bit)', 'master weights (float32)', 'Muon momentum', 'activations']
    """
    order = ["weights", "gradients", "master weights", "AdamW", "Muon", "16-bit weight copies", "activations"]
    return next(i for i, k in enumerate(order) if part.startswith(k))


def colour(part: str) -> str:
    """The colour of a memory part, by the first key its name starts with.

    >>> colour("master weights (float32)"), colour("AdamW momentum and variance")
    ('#7e57c2', '#e4572e')
    """
    return next(c for k, c in PART_COLOURS.items() if part.startswith(k))


def fate(log10_size: float) -> str:
    """What fp16 does to a number of this size (log10): one of FATE_COLOURS' keys.

    >>> [fate(x) for x in (-8, -6, -2, 5)]
    ['becomes 0 in fp16', 'subnormal in fp16: fewer digits', 'kept in fp16', 'overflows fp16']
    """
    f16 = float_format("float16")
    if log10_size < math.log10(f16.smallest_subnormal / 2):  # round-to-nearest gives 0 below half the smallest
        return "becomes 0 in fp16"
    if log10_size < math.log10(f16.smallest_normal):
        return "subnormal in fp16: fewer digits"
    return "kept in fp16" if log10_size <= math.log10(f16.largest) else "overflows fp16"


def histogram(view: PrecisionView, k: int) -> go.Figure:
    """The gradient's magnitudes (log10 bins) multiplied by 2^k, coloured by what fp16 does to them (by each bin's
    middle: the counts under the chart are exact), against fp16's limits."""
    shift = k * math.log10(2)
    mids = [e + shift + HIST_STEP / 2 for e in view.hist_log10]
    fig = go.Figure()
    for name, c in FATE_COLOURS.items():
        xs = [(x, n) for x, n in zip(mids, view.hist_counts, strict=True) if n and fate(x) == name]
        fig.add_bar(x=[x for x, _ in xs], y=[n for _, n in xs], marker_color=c, width=HIST_STEP * 0.9, name=name,
                    hovertemplate="about 10^%{x:.2f}: %{y:,} entries<extra>" + name + "</extra>")
    f16 = float_format("float16")
    limits = [(f16.smallest_subnormal / 2, "fp16: 0 below"), (f16.smallest_normal, "fp16 smallest normal"),
              (f16.largest, "fp16 largest")]
    for value, label in limits:
        fig.add_vline(x=math.log10(value), line=dict(color=LIMIT_COLOUR, dash="dash", width=2),
                      annotation_text=label, annotation_position="top")
    lo = min(math.log10(f16.smallest_subnormal / 2), min(view.hist_log10)) - 0.5
    hi = max(math.log10(f16.largest), max(mids)) + 0.5
    ticks = list(range(math.ceil(lo), math.floor(hi) + 1))
    fig.update_layout(
        height=380, margin=dict(l=10, r=10, t=90, b=40), bargap=0, legend={**LEGEND, "y": 1.14},
        xaxis=dict(title=f"size of a gradient entry × 2^{k}", range=[lo, hi], tickmode="array", tickvals=ticks,
                   ticktext=[f"1e{t}" for t in ticks]),
        yaxis=dict(title="entries (log scale)", type="log"),
    )
    return fig


def underflow_text(u: Underflow) -> str:
    """What fp16 and bf16 make of the gradient at this loss scale.

    >>> print(underflow_text(Underflow(0, 1000, 5, 100, 0, 0, 0)))
    At 2^0 = 1: in fp16 **5** of 1,000 entries become 0 and **100** more keep fewer digits (subnormal); **0** overflow to infinity. In bf16: **0** become 0.
    """
    return (f"At 2^{u.scale_exponent} = {2 ** u.scale_exponent:,}: in fp16 **{fmt.count(u.fp16_zero)}** of "
            f"{fmt.count(u.nonzero)} entries become 0 and **{fmt.count(u.fp16_subnormal)}** more keep fewer digits "
            f"(subnormal); **{fmt.count(u.fp16_overflow)}** overflow to infinity. In bf16: "
            f"**{fmt.count(u.bf16_zero)}** become 0.")


def best_scale(view: PrecisionView) -> Underflow:
    """The smallest loss scale with nothing lost to 0 or infinity and the fewest subnormal entries."""
    ok = [u for u in view.underflow if u.fp16_overflow == 0 and u.fp16_zero == 0] or view.underflow
    return min(ok, key=lambda u: (u.fp16_subnormal, u.scale_exponent))


def formats_table(view: PrecisionView) -> list[dict[str, str]]:
    return [{"Format": f.name, "Exponent bits (range)": str(f.exponent_bits), "Mantissa bits (digits)": str(f.mantissa_bits),
             "Smallest normal": f"{f.smallest_normal:.3g}", "Smallest above 0": f"{f.smallest_subnormal:.3g}",
             "Largest": f"{f.largest:.3g}",
             "Gap after 1.0": f"{f.eps:.3g}"} for f in view.formats]


def lost_table(view: PrecisionView) -> list[dict[str, str]]:
    rows = []
    for row in view.lost:
        label = "peak" if row.lr_factor == 1 else f"{row.lr_factor:g} × peak"
        rows.append({"Learning rate": label, **{f"lost in {name}": fmt.percent(n / row.total)
                                                for name, n in row.lost.items()}})
    return rows


def example_text(view: PrecisionView) -> str:
    e = view.example
    if e is None:
        return "No update of this step is rounded away in bf16."
    name = e.name.replace("`", "")  # a parameter's name from the model itself, shown as code
    return (f"For example, a weight in `{name}`: **{e.weight:.6g}**, its update **{e.update:+.3g}**. In "
            f"float32 it becomes {e.float32_after:.6g}. Kept in bf16 the weight is {e.bf16_weight:.6g}, and bf16's "
            f"numbers near it are {e.bf16_spacing:.3g} apart: the update is less than half that gap, so "
            f"{e.bf16_weight:.6g} + ({e.update:+.3g}) rounds back to **{e.bf16_after:.6g}**. The weight did not move.")
