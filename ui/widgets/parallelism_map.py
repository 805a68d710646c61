"""Lesson 9: one picture of the ways to split a model's training over many GPUs (`engine.cost.parallelism`).

For a published model and a GPU count the learner slides, one stacked bar per scheme (data parallel, ZeRO-1, ZeRO-2,
ZeRO-3 / FSDP, tensor parallel, pipeline parallel) of what one GPU holds: 16-bit weights, 16-bit gradients, float32
master weights and Adam's moments, against the memory of one H100 (read from data/accelerators.yaml). A table with the
same numbers, then what each scheme sends between GPUs per step and the pipeline's bubble for the micro-batches
chosen. Every number comes from the engine's result.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from course.widgets import ParallelismMapParams
from engine import number_format as fmt
from engine.cost.catalogue import accelerator, published_models
from engine.cost.parallelism import ParallelismMap, Scheme, published_parallelism
from ui.precision_charts import LEGEND, LIMIT_COLOUR, colour, stack_order
from ui.text import escape_md, markdown_table

CHIP = "h100_sxm"  # the line drawn across the bars: one H100's memory


@st.cache_data(show_spinner=False, max_entries=64)
def _map(model_id: str, gpus: int, micro_batches: int) -> ParallelismMap:
    return published_parallelism(model_id, gpus, micro_batches)


def label(s: Scheme, gpus: int) -> str:
    """A scheme's name under its bar, with its degree where the scheme has one.

    >>> from engine.cost.parallelism import parallelism_map
    >>> [label(s, 4) for s in parallelism_map({"adamw": 100}, 4).schemes][-3:]
    ['ZeRO-3 / FSDP', 'Tensor parallel ×4', 'Pipeline parallel ×4']
    """
    return f"{s.name} ×{gpus}" if s.id in ("tensor", "pipeline") else s.name


def part_names(m: ParallelismMap) -> list[str]:
    """The parts of the training state in stack order: weights, gradients, master weights, optimizer moments."""
    return sorted((p.name for p in m.state.parts if p.per_param is not None), key=stack_order)


def chart(m: ParallelismMap, chip_gb: float, log: bool = False) -> go.Figure:
    """One stacked bar per scheme: what the fullest GPU holds, in GB, with the chip's memory as a dashed line."""
    fig = go.Figure()
    x = [label(s, m.gpus) for s in m.schemes]
    for name in part_names(m):
        fig.add_bar(x=x, y=[s.largest.parts[name] / 1e9 for s in m.schemes], name=name, marker_color=colour(name),
                    marker_pattern_shape="/" if "16-bit" in name else "",
                    hovertemplate="%{y:,.4g} GB<extra>" + name + "</extra>")
    fig.add_hline(y=chip_gb, line=dict(color=LIMIT_COLOUR, dash="dash", width=2))  # a shape: data units on log too
    fig.add_annotation(text=f"one H100: {chip_gb:g} GB", xref="paper", x=1, xanchor="right", yanchor="bottom",
                       y=math.log10(chip_gb) if log else chip_gb, showarrow=False)  # an annotation: log10 on a log axis
    fig.update_layout(barmode="stack", height=420, margin=dict(l=10, r=10, t=60, b=10), legend=LEGEND,
                      xaxis=dict(title=f"scheme, over {fmt.count(m.gpus)} GPU{'s' if m.gpus > 1 else ''}"),
                      yaxis=dict(title="memory on one GPU (GB), before activations",
                                 type="log" if log else "linear", rangemode="tozero"))
    return fig


def fits(total_bytes: float, chip_gb: float) -> bool:
    return total_bytes <= chip_gb * 1e9


def table(m: ParallelismMap, chip_gb: float) -> list[dict[str, str]]:
    """The chart's numbers: each part on the fullest GPU, its total, whether it fits the chip, and the traffic."""
    rows = []
    for s in m.schemes:
        g = s.largest
        row = {"Scheme": label(s, m.gpus)}
        row |= {name[:1].upper() + name[1:]: fmt.si(g.parts[name], "B") for name in part_names(m)}
        row["One GPU holds"] = f"**{fmt.si(g.total, 'B')}**"
        row[f"Fits {chip_gb:g} GB?"] = "yes" if fits(g.total, chip_gb) else "no"
        row["Each GPU sends per step"] = fmt.si(s.sent_bytes, "B") if s.sent_bytes is not None else "activations"
        rows.append(row)
    return rows


def chart_text(m: ParallelismMap, chip_gb: float) -> str:
    """The bars in words, for a screen reader.

    >>> from engine.cost.parallelism import parallelism_map
    >>> print(chart_text(parallelism_map({"adamw": 10_000_000_000}, 8), 80))  # doctest: +ELLIPSIS
    Chart as text, one GPU's memory over 8 GPUs: Data parallel (DDP) 160 GB (over 80 GB); ZeRO-1 55 GB (fits); ...
    """
    bars = [f"{label(s, m.gpus)} {fmt.si(s.largest.total, 'B')} ({'fits' if fits(s.largest.total, chip_gb) else f'over {chip_gb:g} GB'})"
            for s in m.schemes]
    return f"Chart as text, one GPU's memory over {fmt.count(m.gpus)} GPUs: " + "; ".join(bars) + "."


def summary(m: ParallelismMap, name: str, chip_gb: float) -> str:
    """Which schemes fit the chip, in one sentence.

    >>> from engine.cost.parallelism import parallelism_map
    >>> print(summary(parallelism_map({"adamw": 10_000_000_000}, 1), "X", 80))
    **X** trains with **160 GB** of state on one GPU. On 1 GPU, no scheme fits it in 80 GB per GPU: more GPUs are needed.
    """
    fit = [label(s, m.gpus) for s in m.schemes if fits(s.largest.total, chip_gb)]
    where = f"On {fmt.count(m.gpus)} GPU{'s' if m.gpus > 1 else ''}"
    head = f"**{name}** trains with **{fmt.si(m.state.state_bytes, 'B')}** of state on one GPU. "
    if not fit:
        return head + f"{where}, no scheme fits it in {chip_gb:g} GB per GPU: more GPUs are needed."
    if len(fit) == len(m.schemes):
        return head + f"{where}, every scheme fits it in {chip_gb:g} GB per GPU, plain data parallelism too."
    return (head + f"{where}, these fit it in {chip_gb:g} GB per GPU (before activations): " + ", ".join(fit)
            + ". Plain data parallelism never does: every GPU holds the whole state, however many there are.")


def sends_text(m: ParallelismMap) -> str:
    """What travels between the GPUs per step, scheme by scheme, and the pipeline's bubble."""
    lines = [f"- **{s.name}**: {s.sends}." for s in m.schemes]
    lines.append(f"\n**The bubble.** A pipeline of {fmt.count(m.gpus)} stage{'s' if m.gpus > 1 else ''} fed "
                 f"{m.micro_batches} micro-batch{'es' if m.micro_batches > 1 else ''} per step leaves each GPU idle "
                 f"**{m.bubble:.0%}** of the step: (stages − 1) ÷ (micro-batches + stages − 1).")
    return "\n".join(lines)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.parallelism:parallelism_map", "engine.cost.parallelism:bubble",
               "engine.cost.parallelism:published_parallelism")


def render(params: ParallelismMapParams, key: str) -> None:
    models = {p.id: p for p in published_models()}
    model_id = st.selectbox("Published model", list(models), index=list(models).index(params.model),
                            format_func=lambda i: f"{models[i].name}, {models[i].year}", key=f"{key}-model")
    left, right = st.columns(2)
    gpus = left.select_slider("GPUs", options=list(params.GPU_COUNTS), value=params.gpus, key=f"{key}-gpus")
    micro = right.select_slider("Micro-batches per step (for the pipeline)", options=list(params.MICRO_BATCHES),
                                value=params.micro_batches, key=f"{key}-micro")
    log = st.toggle("Logarithmic axis (for the biggest models)", value=False, key=f"{key}-log")
    m = _map(model_id, gpus, micro)
    chip_gb = float(accelerator(CHIP).memory_gb)
    name = escape_md(models[model_id].name)
    st.markdown(summary(m, name, chip_gb))
    st.plotly_chart(chart(m, chip_gb, log), key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(chart_text(m, chip_gb))
    st.markdown(markdown_table(table(m, chip_gb)))
    st.caption(f"GB = 10⁹ bytes; mixed precision with Adam, 16 bytes per parameter in all. Each bar is the GPU that "
               f"holds the most. Activations come on top. The catalogue does not record how many layers "
               f"{name} has, so the pipeline's stages are taken as equal; a real pipeline also puts the embedding "
               f"tables on its first and last stages. Bytes sent are for ring collectives; tensor and pipeline "
               f"parallelism send activations, which depend on the batch and the context.")
    st.markdown("**What travels between the GPUs each step**\n\n" + sends_text(m))
