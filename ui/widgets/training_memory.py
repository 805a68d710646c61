"""Lesson 9: the memory a training run holds, per parameter and in activations, and what 16-bit numbers do to a real
gradient and a real update (`engine.cost.memory.measure_step`, `engine.cost.memory.published_memory`).

Three parts, top to bottom. The learner's model (their lesson-7 run or the reference model): one real training step
on a batch of its own text, with its own optimizers, and each part of memory measured (weights, gradients, the
optimizer's state after the step, the activations autograd saved) beside the per-parameter formula. A published
model from the catalogue: 16 bytes per parameter with Adam, and how many of each catalogue chip it takes just to hold
that. Mixed precision: the same step's gradient in fp16 and bf16 (what loss scaling rescues), and its update added to
16-bit weights (what the float32 master copy is for). Every number comes from the engine's result.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import TrainingMemoryParams
from engine import number_format as fmt
from engine.cost.catalogue import published_models
from engine.cost.memory import (
    MemoryBreakdown,
    OwnModelMemory,
    PublishedMemory,
    RunSettings,
    measure_step,
    published_memory,
    run_batch,
    run_settings,
)
from engine.cost.mixed_precision import SCALE_EXPONENTS, PrecisionView, float_format
from engine.device import single_thread
from ui import model_source, run_text, session
from ui.precision_charts import (  # noqa: F401 - FATE_COLOURS, LIMIT_COLOUR, PART_COLOURS: its test checks every colour
    FATE_COLOURS,
    LEGEND,
    LIMIT_COLOUR,
    PART_COLOURS,
    best_scale,
    colour,
    example_text,
    formats_table,
    histogram,
    lost_table,
    stack_order,
    underflow_text,
)
from ui.text import escape_md, markdown_table

SEED = 0  # the batch the step trains on
DTYPE_WORDS = {"float32": "float32", "bfloat16": "bf16 autocast"}


@st.cache_data(show_spinner="Taking one real training step on the model...", max_entries=16)
def _measure(run_dir: str, step: int, text_id: str, _text: str) -> OwnModelMemory:
    """Cached per model, step and text (`_text` is named by `text_id`: a megabyte is not hashed per call)."""
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    settings = run_settings(run_dir)
    x, y = run_batch(tokenizer, _text, settings.config.batch_size, model.config.block_size, SEED)  # (B, T) each
    with single_thread():
        return measure_step(model, settings.config, x, y, settings.dtype)


@st.cache_data(show_spinner=False, max_entries=16)
def _settings(run_dir: str, step: int) -> RunSettings:
    """What the run folder recorded, read once per model and step (the metrics file can be long)."""
    return run_settings(run_dir)


@st.cache_data(show_spinner=False, max_entries=16)
def _published(model_id: str) -> PublishedMemory:
    return published_memory(model_id)


# --- the learner's model ------------------------------------------------------------------------------------------


def own_rows(m: OwnModelMemory) -> list[tuple[str, float]]:
    """(part, bytes) as measured, in the run's own precision: weights, gradients, each optimizer's state, the
    autocast weight copies (bf16 only) and the activations."""
    act = m.activations[m.dtype]
    rows = [("weights (float32)", m.weights), ("gradients (float32)", m.gradients)]
    rows += [("AdamW momentum and variance" if k == "adamw" else "Muon momentum", v) for k, v in m.optimizer.items()]
    if act.weight_copies:
        rows.append(("16-bit weight copies", act.weight_copies))
    rows.append(("activations", act.total))
    return rows


def own_chart(m: OwnModelMemory) -> go.Figure:
    """One stacked bar per precision (float32, bf16 autocast), in MB; the run's own precision is named."""
    fig = go.Figure()
    order = ["float32", "bfloat16"]
    names = {d: DTYPE_WORDS[d] + (" (as the run trained)" if d == m.dtype else "") for d in order}
    parts: dict[str, list[float]] = {}
    for d in order:
        a = m.activations[d]
        values = [("weights (float32)", m.weights), ("gradients (float32)", m.gradients)]
        values += [("AdamW momentum and variance" if k == "adamw" else "Muon momentum", v) for k, v in m.optimizer.items()]
        values += [("16-bit weight copies", a.weight_copies), ("activations", a.total)]
        for name, v in values:
            parts.setdefault(name, []).append(v / 1e6)
    for name, values in parts.items():
        if any(values):
            fig.add_bar(y=[names[d] for d in order], x=values, name=name, orientation="h", marker_color=colour(name),
                        marker_pattern_shape="/" if "16-bit" in name else "",
                        hovertemplate="%{x:.3g} MB<extra>" + name + "</extra>")
    fig.update_layout(barmode="stack", height=260, margin=dict(l=10, r=10, t=60, b=40),
                      xaxis=dict(title="memory (MB)", rangemode="tozero"), yaxis=dict(title=None, autorange="reversed"),
                      legend=LEGEND)
    return fig


def formula_text(m: OwnModelMemory, part: str) -> str:
    """The per-parameter formula for one measured part, written out.

    >>> formula_text(_example(), "AdamW momentum and variance")
    '8 B × 200 + 4 B × 2 step counts = 1.6 kB'
    """
    mix = m.params_by_optimizer
    total = {p.name: p.bytes for p in m.formula.parts}.get(part)
    if part.startswith(("weights", "gradients")):
        return f"4 B × {fmt.count(m.parameters)} = {fmt.file_size(int(total))}"
    if part.startswith("AdamW"):
        return (f"8 B × {fmt.count(mix['adamw'])} + 4 B × {m.adamw_tensors} step counts = "
                f"{fmt.file_size(int(total))}")
    if part.startswith("Muon"):
        return f"4 B × {fmt.count(mix['muon'])} = {fmt.file_size(int(total))}"
    if part.startswith("16-bit"):
        return "2 B per weight of a matrix, made during the forward pass"
    return "grows with batch × context, not with parameters"


def own_table(m: OwnModelMemory) -> list[dict[str, str]]:
    """Each part measured, beside its formula (bytes per parameter x parameters)."""
    return [{"Part": name, "Measured": fmt.file_size(int(measured)), "Formula": formula_text(m, name),
             "Bytes per parameter": f"{measured / m.parameters:.3g}"} for name, measured in own_rows(m)]


def own_summary(m: OwnModelMemory) -> str:
    """What the step measured, in words: the optimizer mix, the state per parameter, and the activations' share.

    >>> print(own_summary(_example()))  # doctest: +ELLIPSIS
    This model has **1,000** parameters: AdamW updates 200 of them (two float32 moments each) and Muon 800 (one momentum buffer each). Weights, gradients and optimizer state come to **12.8 bytes per parameter**; ... **83%** of the memory: ...
    """
    mix = m.params_by_optimizer
    who = [f"AdamW updates {fmt.count(mix['adamw'])} of them (two float32 moments each)"] if mix.get("adamw") else []
    who += [f"Muon {fmt.count(mix['muon'])} (one momentum buffer each)"] if mix.get("muon") else []
    state = m.weights + m.gradients + sum(m.optimizer.values())
    act = m.activations[m.dtype].total + m.activations[m.dtype].weight_copies
    return (f"This model has **{fmt.count(m.parameters)}** parameters: {' and '.join(who)}. Weights, gradients and "
            f"optimizer state come to **{state / m.parameters:.3g} bytes per parameter**; with Adam for every "
            f"parameter it would be 16. The activations of one batch ({m.batch} windows × {m.block} tokens) are "
            f"**{act / (state + act):.0%}** of the memory" + (
                ": a small model on a full batch spends most of its memory on what it computes, not on what it is."
                if act > state else ", the training state the rest."))


def activation_text(m: OwnModelMemory) -> str:
    """Measured activations per layer against Korthikanti et al.'s 16-bit estimate."""
    a = m.activations[m.dtype]
    per_layer = sum(a.per_layer) / len(a.per_layer)
    bf = m.activations["bfloat16"]
    fp = m.activations["float32"]
    return (f"**Activations, measured.** Every tensor autograd kept for the backward pass was added up during the "
            f"step: **{fmt.file_size(int(per_layer))} per layer** ({DTYPE_WORDS[m.dtype]}), "
            f"{fmt.file_size(a.outside)} outside the layers (embeddings, the output layer's scores and the loss). "
            f"The same batch kept {fmt.file_size(fp.total)} in float32 and {fmt.file_size(bf.total)} under bf16 "
            f"autocast (measured on this machine's processor, where this engine keeps attention in float32: bf16 "
            f"saves less than half). "
            f"Korthikanti et al. (2022) estimate s·b·h·(34 + 5·a·s/h) bytes per layer for 16-bit activations with "
            f"the attention scores stored: **{fmt.file_size(int(m.estimate_per_layer))}** for this model on this "
            f"batch. The formula was worked out for large GPT models in 16 bits with dropout: this engine's fused "
            f"attention kernel stores no T × T table of scores, there is no dropout here, and float32 doubles "
            f"everything.")


# --- a published model --------------------------------------------------------------------------------------------


def published_chart(p: PublishedMemory) -> go.Figure:
    """Two stacked bars in GB: float32 with Adam, and mixed precision with Adam (ZeRO's accounting)."""
    fig = go.Figure()
    rows = [("float32 + Adam", p.float32), ("mixed precision + Adam", p.mixed)]
    names = sorted({part.name for _, b in rows for part in b.parts}, key=lambda n: (stack_order(n), "16-bit" in n))
    for name in names:
        values = [next((x.bytes / 1e9 for x in b.parts if x.name == name), 0.0) for _, b in rows]
        fig.add_bar(y=[r for r, _ in rows], x=values, name=name, orientation="h", marker_color=colour(name),
                    marker_pattern_shape="/" if "16-bit" in name else "",  # hatched: the 16-bit copies
                    hovertemplate="%{x:,.4g} GB<extra>" + name + "</extra>")
    fig.update_layout(barmode="stack", height=250, margin=dict(l=10, r=10, t=60, b=40),
                      xaxis=dict(title="training state (GB), before activations", rangemode="tozero"),
                      yaxis=dict(title=None, autorange="reversed"), legend=LEGEND)
    return fig


def per_param_sum(b: MemoryBreakdown) -> str:
    """The bytes per parameter written out as a sum.

    >>> from engine.cost.memory import training_memory
    >>> per_param_sum(training_memory({"adamw": 10}, "mixed"))
    '2 + 2 + 4 + 8 = 16 bytes'
    """
    return " + ".join(f"{p.per_param:g}" for p in b.parts) + f" = {b.state_per_param:g} bytes"


def hold_text(p: PublishedMemory) -> str:
    """Whether one catalogue chip can hold the training state, and which.

    >>> from engine.cost.memory import published_memory
    >>> print(hold_text(published_memory("llama3_8b")))
    1 of the catalogue's 8 chips holds it alone (NVIDIA H200 SXM 141GB), with 13 GB left for activations; every other one needs help:
    >>> print(hold_text(published_memory("gpt3_175b")))
    No chip in the catalogue holds it alone: even the largest, NVIDIA H200 SXM 141GB (141 GB), takes 20. The state has to be split across chips:
    """
    largest = max(p.chips, key=lambda c: c.memory_gb)
    alone = [c for c in p.chips if c.chips == 1]
    if not alone:
        return (f"No chip in the catalogue holds it alone: even the largest, {escape_md(largest.name)} "
                f"({largest.memory_gb:g} GB), takes {fmt.count(largest.chips)}. The state has to be split across chips:")
    names = ", ".join(escape_md(c.name) for c in alone)
    room = largest.memory_gb - p.mixed.state_bytes / 1e9
    rest = "; every other one needs help:" if len(alone) < len(p.chips) else ":"
    return (f"{len(alone)} of the catalogue's {len(p.chips)} chips hold{'s' if len(alone) == 1 else ''} it alone "
            f"({names}), with {room:.3g} GB left for activations{rest}")


def chips_table(p: PublishedMemory) -> list[dict[str, str]]:
    return [{"Chip": escape_md(c.name), "Memory": f"{c.memory_gb:g} GB",
             "Chips just to hold the state": fmt.count(c.chips)} for c in p.chips]


# --- mixed precision -----------------------------------------------------------------------------------------------


def _example() -> OwnModelMemory:
    """A hand-made result for the doctests: 1,000 parameters, 200 on AdamW and 800 on Muon."""
    from engine.cost.memory import Activations, training_memory
    from engine.cost.mixed_precision import float_format as ff

    mix = {"adamw": 200, "muon": 800}
    view = PrecisionView([ff("float32")], [-3.0], [1000], 0, [], [], None)
    return OwnModelMemory(1000, mix, 2, 2, 8, "float32", 4000, 4000, {"adamw": 1600, "muon": 3200},
                          training_memory(mix, "float32"), {"float32": Activations("float32", [30000], 34000, 0)},
                          1000.0, 1.5, view)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.memory:training_memory", "engine.cost.memory:measure_step",
               "engine.cost.mixed_precision:underflow", "engine.cost.mixed_precision:rounding_away")


def render(params: TrainingMemoryParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-source")
    settings = _settings(source.run_dir, source.final_step)
    who = "Your run" if source.own else "The reference model's run"
    st.markdown(f"{who} trained in **{DTYPE_WORDS[settings.dtype]}**"
                + (f" (“{escape_md(settings.device)}”)." if settings.device else "."))
    text = run_text.trained_text(me.id, source.run_dir, own=source.own)

    st.subheader(("Your model" if source.own else "The reference model") + ": one training step, measured")
    if text is None:
        st.info("The text this run trained on is not available here, so no step can be measured. The published "
                "models below still show the arithmetic.")
        m = None
    else:
        text_id, body, text_name = text
        m = _measure(source.run_dir, source.final_step, text_id, body)
        st.caption(f"One real step on a batch of {escape_md(text_name)} ({m.batch} windows × {m.block} tokens, the "
                   f"run's own batch), with the run's own optimizers at their peak learning rate, on a copy of the "
                   f"model. The step's loss: {fmt.loss(m.loss)}.")
        st.plotly_chart(own_chart(m), key=f"{key}-own", config={"displayModeBar": False})
        st.markdown(own_summary(m))
        st.markdown(markdown_table(own_table(m)))
        st.markdown(activation_text(m))

    st.subheader("A published model: 16 bytes per parameter")
    models = {p.id: p for p in published_models()}
    model_id = st.selectbox("Published model", list(models), index=list(models).index(params.model),
                            format_func=lambda i: f"{models[i].name}, {models[i].year}", key=f"{key}-model")
    p = _published(model_id)
    st.plotly_chart(published_chart(p), key=f"{key}-published", config={"displayModeBar": False})
    st.markdown(
        f"**{escape_md(p.name)}** has {fmt.sci(p.parameters)} parameters. With Adam, float32 training holds "
        f"{per_param_sum(p.float32)} per parameter; mixed precision (Rajbhandari et al. 2020, the ZeRO paper) holds "
        f"{per_param_sum(p.mixed)}: **{fmt.si(p.mixed.state_bytes, 'B')}** before a single activation. The same total "
        f"both ways: mixed precision makes the arithmetic faster and the activations smaller, not the optimizer's "
        f"state. " + hold_text(p))
    st.markdown(markdown_table(chips_table(p)))
    st.caption(f"GB = 10⁹ bytes. Activations come on top; they grow with batch × context and the model's width and "
               f"depth, which the catalogue does not record. Parameters: {escape_md(p.source)}.")

    st.subheader("Mixed precision on a real gradient")
    if m is None:
        return
    view = m.precision
    st.markdown(markdown_table(formats_table(view)))
    st.markdown("bf16 keeps float32's 8 exponent bits (its range) and gives up digits; fp16 keeps more digits but "
                "has only 5 exponent bits, so small numbers fall off its bottom. Below: every entry of the step's "
                "gradient, by size, against fp16's limits.")
    best = best_scale(view)
    k = st.select_slider("Loss scale: multiply the loss (so every gradient) by 2^k", options=list(SCALE_EXPONENTS),
                         value=0, format_func=lambda e: f"2^{e}", key=f"{key}-scale")
    u = view.underflow[k]
    st.plotly_chart(histogram(view, k), key=f"{key}-hist", config={"displayModeBar": False})
    st.markdown(underflow_text(u))
    st.caption(f"bf16's smallest normal number is {float_format('bfloat16').smallest_normal:.3g}, far off the "
               f"chart's left edge: nothing this gradient holds falls below it. fp16 training scales the loss and "
               f"divides the gradients back before the update; here 2^{best.scale_exponent} loses nothing and leaves "
               f"the fewest entries subnormal. Too big a scale overflows, and the step must be skipped.")

    st.markdown("**Why the master weights stay float32.** The same step's update, added to the weights kept in each "
                "format. Late in training the learning rate has decayed, and the updates shrink with it:")
    st.markdown(markdown_table(lost_table(view)))
    st.markdown(example_text(view))
