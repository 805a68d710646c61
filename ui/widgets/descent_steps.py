"""Lesson 7: plain gradient descent on one weight, so every step of the learning rate's effect is visible."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import DescentStepsParams
from engine.transform.descent import BOTTOM, DescentPath, bowl_loss, descend

RATES = [0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1.0, 1.3, 1.6, 1.9, 2.1, 2.4]
VERDICTS = {
    "too small": "Every step goes the right way but barely moves: the budget runs out before the bottom.",
    "about right": "Big early steps, smaller ones as the slope flattens: the loss settles near the bottom.",
    "overshooting": "Each step jumps over the bottom to the other side, yet lands a little closer: it zigzags in.",
    "diverging": "Each jump lands further out than it started: the loss grows step after step. This is divergence.",
}


def path_chart(path: DescentPath) -> go.Figure:
    """The bowl, and the weight's path down (or up) it: one marker per step, numbered."""
    reach = max(4.0, max(abs(w - BOTTOM) for w in path.weights[:8]) * 1.1)
    xs = [BOTTOM - reach + 2 * reach * i / 120 for i in range(121)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[bowl_loss(x) for x in xs], mode="lines", name="loss for each weight",
                             line=dict(width=2), hoverinfo="skip"))
    shown = [(i, w, loss) for i, (w, loss) in enumerate(zip(path.weights, path.losses, strict=True))
             if abs(w - BOTTOM) <= reach]
    fig.add_trace(go.Scatter(x=[w for _, w, _ in shown], y=[loss for _, _, loss in shown], mode="lines+markers+text",
                             name="the weight, step by step", text=[str(i) for i, _, _ in shown],
                             textposition="top center", marker=dict(size=9),
                             hovertemplate="step %{text}<br>weight %{x:.2f}<br>loss %{y:.2f}<extra></extra>"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=40), xaxis_title="the weight w",
                      yaxis_title="loss", legend=dict(orientation="h", y=1.08))
    return fig


def path_text(path: DescentPath) -> str:
    """The path in words, step by step (for a screen reader): the weight and its loss after each step.

    >>> path_text(DescentPath(0.5, [4.0, 2.0, 1.0], [9.0, 1.0, 0.0], "about right"))
    'Chart as text, weight and loss after each step: 0: w 4.00, loss 9.00; 1: w 2.00, loss 1.00; 2: w 1.00, loss 0.00.'
    """
    steps = "; ".join(f"{i}: w {w:.3g}, loss {loss:.3g}" if abs(w) >= 1e6 or loss >= 1e6 else
                      f"{i}: w {w:.2f}, loss {loss:.2f}"
                      for i, (w, loss) in enumerate(zip(path.weights, path.losses, strict=True)))
    return f"Chart as text, weight and loss after each step: {steps}."


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.descent:descend", "engine.transform.descent:bowl_gradient")


def render(params: DescentStepsParams, key: str) -> None:
    default = min(RATES, key=lambda r: abs(r - params.lr))
    lr = st.select_slider("Learning rate", RATES, value=default, key=f"{key}-lr")
    path = descend(lr, steps=params.steps)
    st.plotly_chart(path_chart(path), key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(path_text(path))
    a, b = st.columns(2)
    a.metric("Loss at the start", f"{path.losses[0]:.2f}")
    end = path.losses[-1]
    b.metric(f"Loss after {params.steps} steps", f"{end:.3g}" if end < 1e6 else f"{end:.1e}")
    st.markdown(f"**{path.verdict.capitalize()}.** {VERDICTS[path.verdict]}")
