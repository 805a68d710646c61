"""Lesson 9's compute-optimal calculator: split a FLOPs budget into parameters N and tokens D with C = 6ND and
D = r N (Hoffmann et al. 2022, r ~ 20: `engine.cost.flops.compute_optimal`), and place the result among published
models on a log-log chart of parameters against tokens, with the 20-tokens-per-parameter line.

The budget starts from a preset: the learner's own lesson-7 run (its FLOPs, from `ui.run_compute`), or a
published model's training compute (reported, or 6ND where only parameters and tokens were published).
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import ComputeOptimalParams
from engine.cost.catalogue import published_models
from engine.cost.flops import CHINCHILLA_TOKENS_PER_PARAM, ComputeOptimal, compute_optimal, count_parameters
from engine.number_format import sci
from ui import run_compute, run_view, session

MAIN_RUN = "main"
CUSTOM = "custom"
OWN_RUN = "own"


def presets(learner_id: int) -> dict[str, tuple[str, float]]:
    """Preset id -> (label, FLOPs): the learner's run (when it has recorded a step), then every published model
    whose compute is known or can be estimated."""
    out: dict[str, tuple[str, float]] = {}
    run = run_view.load(learner_id, MAIN_RUN)
    rc = run_compute.compute(run) if run is not None else None
    if rc is not None and rc.flops > 0:
        out[OWN_RUN] = ("Your lesson-7 run", rc.flops)
    for m in published_models():
        if m.training_flops is not None:
            out[m.id] = (f"{m.name} (reported)", m.training_flops)
        elif m.training_tokens is not None:
            out[m.id] = (f"{m.name} (6ND)", 6.0 * m.parameters * m.training_tokens)
    return out


def own_point(learner_id: int) -> tuple[float, float] | None:
    """(parameters, tokens) of the learner's run, to place it on the chart."""
    run = run_view.load(learner_id, MAIN_RUN)
    config = run_compute.model_config(run) if run is not None else None
    rc = run_compute.compute(run) if config is not None else None
    return None if rc is None or rc.tokens <= 0 else (float(count_parameters(config).total), float(rc.tokens))


# Where each catalogue model's name goes around its point, chosen by looking at the chart: three 70B models sit
# one above another and GPT-3 just below them. A model added to the catalogue gets its name above its point.
LABEL_POSITION = {"chinchilla_70b": "bottom center", "llama2_70b": "middle left", "gpt3_175b": "middle right",
                  "llama3_1_405b": "bottom center"}


def chart(split: ComputeOptimal, own: tuple[float, float] | None) -> go.Figure:
    """Published models (parameters vs tokens, log-log), the 20-tokens-per-parameter line, the computed split."""
    models = [m for m in published_models() if m.training_tokens is not None]
    xs = [m.parameters for m in models] + [split.parameters] + ([own[0]] if own else [])
    lo, hi = min(xs) / 3, max(xs) * 3
    fig = go.Figure()
    fig.add_scatter(x=[lo, hi], y=[CHINCHILLA_TOKENS_PER_PARAM * lo, CHINCHILLA_TOKENS_PER_PARAM * hi],
                    mode="lines", name=f"{CHINCHILLA_TOKENS_PER_PARAM:g} tokens per parameter",
                    line={"dash": "dash"})
    if split.tokens_per_parameter != CHINCHILLA_TOKENS_PER_PARAM:
        r = split.tokens_per_parameter
        fig.add_scatter(x=[lo, hi], y=[r * lo, r * hi], mode="lines", name=f"{r:g} tokens per parameter",
                        line={"dash": "dot"})
    def place(m) -> str:
        return LABEL_POSITION.get(m.id, "top center")

    fig.add_scatter(x=[m.parameters for m in models], y=[m.training_tokens for m in models],
                    mode="markers+text", text=[m.name for m in models],
                    textposition=[place(m) for m in models],
                    customdata=[m.training_tokens / m.parameters for m in models],
                    hovertemplate="%{text}<br>%{x:.3s} parameters, %{y:.3s} tokens<br>"
                                  "%{customdata:,.0f} tokens per parameter<extra></extra>",
                    name="published models")
    fig.add_scatter(x=[split.parameters], y=[split.tokens], mode="markers", name="your budget's split",
                    marker={"symbol": "star", "size": 16})
    if own is not None:
        fig.add_scatter(x=[own[0]], y=[own[1]], mode="markers", name="your lesson-7 run",
                        marker={"symbol": "diamond", "size": 11})
    fig.update_xaxes(type="log", title_text="parameters (N)")
    fig.update_yaxes(type="log", title_text="training tokens (D)")
    fig.update_layout(height=480, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": -0.2})
    return fig


def chart_text(split: ComputeOptimal, own: tuple[float, float] | None) -> str:
    """The chart's points in words (a screen reader gets what the chart shows): each published model's parameters
    and tokens with its tokens per parameter, then the computed split and the learner's run."""
    models = [m for m in published_models() if m.training_tokens is not None]
    points = [f"{m.name} {sci(m.parameters)} parameters, {sci(m.training_tokens)} tokens "
              f"({m.training_tokens / m.parameters:,.0f} per parameter)" for m in models]
    points.append(f"your budget's split {sci(split.parameters)} parameters, {sci(split.tokens)} tokens")
    if own is not None:
        points.append(f"your lesson-7 run {sci(own[0])} parameters, {sci(own[1])} tokens")
    return "Chart as text: " + "; ".join(points) + "."


def _apply_preset(key: str, table: dict[str, tuple[str, float]]) -> None:
    chosen = st.session_state.get(f"{key}-preset")
    if chosen in table:
        st.session_state[f"{key}-flops"] = float(table[chosen][1])


def _typed_own(key: str) -> None:
    st.session_state[f"{key}-preset"] = CUSTOM  # a typed budget is no longer the preset's


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.flops:compute_optimal",)


def render(params: ComputeOptimalParams, key: str) -> bool:
    me = session.learner()
    table = presets(me.id)
    options = [*table, CUSTOM]
    st.selectbox("Start from", options, index=len(options) - 1, key=f"{key}-preset",
                 format_func=lambda p: "a budget of my own" if p == CUSTOM else
                 f"{table[p][0]}: {sci(table[p][1])} FLOPs",
                 on_change=_apply_preset, args=(key, table))
    left, right = st.columns(2)
    st.session_state.setdefault(f"{key}-flops", max(1.0, float(params.flops)))  # the presets write this key: no value=
    flops = left.number_input("Compute budget (FLOPs)", min_value=1.0, max_value=1e30, format="%.3e",
                              key=f"{key}-flops", on_change=_typed_own, args=(key,),
                              help="Type a number like 1e21, or pick a preset above.")
    ratio = right.number_input("Tokens per parameter", min_value=0.1, max_value=10_000.0,
                               value=max(0.1, float(params.tokens_per_parameter)), step=1.0, key=f"{key}-ratio",
                               help=f"Chinchilla's rule of thumb is about {CHINCHILLA_TOKENS_PER_PARAM:g}.")
    split = compute_optimal(float(flops), float(ratio))
    st.markdown(f"A budget of **{sci(split.flops)} FLOPs** at {split.tokens_per_parameter:g} tokens per "
                f"parameter: a model of **{sci(split.parameters)} parameters** trained on "
                f"**{sci(split.tokens)} tokens** (6 × N × D = {sci(6 * split.parameters * split.tokens)}).")
    own = own_point(me.id)
    st.plotly_chart(chart(split, own), key=f"{key}-chart")
    st.caption(chart_text(split, own))
    return True
