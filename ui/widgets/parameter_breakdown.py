"""Where a model's parameters live: a bar per part (embeddings, attention, MLP, norms, the tied output head) with
the total, counted by `engine.look_inside.inspection.parameter_breakdown` from the learner's run or the reference model."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import ParameterBreakdownParams
from engine.look_inside.inspection import ParamPart, parameter_breakdown
from ui import model_source, session


def chart(parts: list[ParamPart]) -> go.Figure:
    """Horizontal bars, parts in the order data flows (top to bottom), each labelled with its count and share."""
    total = sum(p.count for p in parts) or 1
    fig = go.Figure(go.Bar(
        x=[p.count for p in parts], y=[p.name for p in parts], orientation="h",
        text=[f"{p.count:,} ({p.count / total:.0%})" for p in parts], textposition="outside", cliponaxis=False,
        customdata=[p.note for p in parts], hovertemplate="%{y}: %{x:,} parameters<br>%{customdata}<extra></extra>",
    ))
    fig.update_layout(height=300, margin=dict(l=10, r=90, t=10, b=40), xaxis=dict(title="parameters"),
                      yaxis=dict(type="category", autorange="reversed", title="part of the model"))
    return fig


def summary(parts: list[ParamPart]) -> str:
    """The total and the biggest part, in words.

    >>> summary([ParamPart("attention", 64, ""), ParamPart("MLP", 128, ""), ParamPart("norms", 8, "")])
    'This model has **200** parameters in all. The biggest part is the MLP: **128**, 64% of the total.'
    """
    total = sum(p.count for p in parts)
    big = max(parts, key=lambda p: p.count)
    return (f"This model has **{total:,}** parameters in all. The biggest part is the {big.name}: "
            f"**{big.count:,}**, {big.count / max(total, 1):.0%} of the total.")


def chart_text(parts: list[ParamPart]) -> str:
    """Every bar in words, in the chart's order (a screen reader gets what the chart shows).

    >>> chart_text([ParamPart("attention", 64, ""), ParamPart("MLP", 128, ""), ParamPart("norms", 8, "")])
    'Chart as text: attention 64 (32%), MLP 128 (64%), norms 8 (4%).'
    """
    total = sum(p.count for p in parts) or 1
    return "Chart as text: " + ", ".join(f"{p.name} {p.count:,} ({p.count / total:.0%})" for p in parts) + "."


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.inspection:parameter_breakdown",)


def render(params: ParameterBreakdownParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    model, _ = model_source.load_model(source)
    parts = parameter_breakdown(model)
    c = model.config
    st.markdown(summary(parts))
    st.plotly_chart(chart(parts), key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(chart_text(parts))
    st.caption(f"Its settings: {c.n_layer} layers, {c.n_head} heads, vectors of {c.n_embd} numbers (n_embd), "
               f"a vocabulary of {c.vocab_size} tokens and a window of {c.block_size} positions.")
    head = next((p for p in parts if p.name == "output head"), None)
    if head is not None and head.count == 0:
        st.caption(f"The output head shows 0 because it is {head.note}.")
    positions = model.transformer.wpe.weight.numel()
    st.caption(f"A training run's panel reports {model.num_params():,} parameters: like nanoGPT, it leaves out the "
               f"{positions:,} numbers of the position table, which only say where a token sits.")
    if params.show_table:
        st.dataframe([{"part": p.name, "parameters": p.count, "what it is": p.note} for p in parts],
                     hide_index=True, key=f"{key}-table",
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})
