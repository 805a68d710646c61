"""Lesson 5's map: every token's row of the embedding table, squashed onto two (or three) axes by PCA, at each
snapshot of the shown model's training timeline (`engine.look_inside.embeddings.run_projection`: axes fitted once per run,
so scrubbing shows tokens moving because training moved them, on fixed plot ranges).

Colour and marker shape both say the token's group (`engine.look_inside.groups.GROUPS`), so colour is never the
only cue; a short text says the same in words, with how tightly each group sits together on the map.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from course.widgets import EmbeddingMapParams
from engine.look_inside.embeddings import Projection, RunProjection, run_projection
from engine.look_inside.groups import GROUPS
from ui import model_source, session

# Colours that read on both the light and the dark theme (each at least 3:1 against #ffffff and #171614, checked by
# tests/ui/test_chart_accessibility.py), and a marker shape per group.
STYLE = {
    "vowel": ("#c87f0a", "circle"), "consonant": ("#2e86de", "square"), "upper": ("#229954", "diamond"),
    "digit": ("#e84393", "star"), "punctuation": ("#e74c3c", "triangle-up"), "whitespace": ("#808b96", "x"),
    "word": ("#9b59b6", "circle"), "piece": ("#16a085", "square"), "other": ("#7f8c8d", "cross"),
}
LABEL_LIMIT = 150  # above this many tokens (a BPE vocabulary) the points carry no text, only hover labels


def spread(points: list[tuple[float, ...]]) -> float:
    """The mean distance between two points of a list (0 for fewer than two).

    >>> spread([(0.0, 0.0), (3.0, 4.0)])
    5.0
    """
    pairs = [(a, b) for i, a in enumerate(points) for b in points[i + 1:]]
    return sum(math.dist(a, b) for a, b in pairs) / len(pairs) if pairs else 0.0


def tightness(frame: Projection, dims: int = 2) -> list[tuple[str, int, float]]:
    """(group label, tokens, ratio) per group of two or more tokens, tightest first: the mean distance between two
    tokens of the group divided by the mean distance between any two tokens, on the map. 1 means the group is as
    scattered as everything else; well below 1 means it has gathered."""
    coords = {p.id: (p.x, p.y, p.z or 0.0)[:dims] for p in frame.points}
    overall = spread(list(coords.values())) or 1.0
    out = []
    for g in GROUPS:
        members = [coords[p.id] for p in frame.points if p.group == g.name]
        if len(members) >= 2:
            out.append((g.label, len(members), spread(members) / overall))
    return sorted(out, key=lambda row: row[2])


def chart(frame: Projection, bounds: tuple[tuple[float, float], ...], dims: int) -> go.Figure:
    labelled = len(frame.points) <= LABEL_LIMIT
    fig = go.Figure()
    for g in GROUPS:
        pts = [p for p in frame.points if p.group == g.name]
        if not pts:
            continue
        colour, symbol = STYLE[g.name]
        common = dict(name=f"{g.label} ({len(pts)})", text=[p.label for p in pts],
                      mode="markers+text" if labelled else "markers", textposition="top center",
                      textfont=dict(size=12), hovertemplate="%{text}<extra>" + g.label + "</extra>")
        if dims == 3:
            fig.add_trace(go.Scatter3d(x=[p.x for p in pts], y=[p.y for p in pts], z=[p.z for p in pts],
                                       marker=dict(color=colour, size=4), **common))
        else:
            fig.add_trace(go.Scatter(x=[p.x for p in pts], y=[p.y for p in pts],
                                     marker=dict(color=colour, symbol=symbol, size=9), **common))
    pad = [(hi - lo) * 0.08 or 0.1 for lo, hi in bounds]
    ranges = [[lo - p, hi + p] for (lo, hi), p in zip(bounds, pad, strict=True)]
    names = ["axis 1 (most spread)", "axis 2 (next most)", "axis 3"]
    legend = dict(orientation="h", y=-0.12, x=0, yanchor="top")
    if dims == 3:
        fig.update_layout(scene=dict(xaxis=dict(range=ranges[0], title=names[0]),
                                     yaxis=dict(range=ranges[1], title=names[1]),
                                     zaxis=dict(range=ranges[2], title=names[2]), aspectmode="cube"),
                          height=560, margin=dict(l=0, r=0, t=10, b=10), legend=legend, uirevision="map")
    else:
        fig.update_layout(xaxis=dict(range=ranges[0], title=names[0], zeroline=False),
                          yaxis=dict(range=ranges[1], title=names[1], zeroline=False),
                          height=520, margin=dict(l=10, r=10, t=10, b=10), legend=legend)
    return fig


def variance_caption(frame: Projection, dims: int) -> str:
    shown = frame.explained[:dims]
    parts = ", ".join(f"axis {i + 1} {v:.1%}" for i, v in enumerate(shown))
    return (f"**What the map keeps at step {frame.step:,}:** {parts} of how much the rows differ, "
            f"{sum(shown):.1%} together. The other directions of the table, which the map cannot show, hold the "
            f"remaining {1 - sum(shown):.1%}.")


def summary(frame: Projection, dims: int) -> str:
    rows = tightness(frame, dims)
    parts = "; ".join(f"{label} ({n} tokens) {ratio:.2f}" for label, n, ratio in rows)
    return (f"The chart in words: {len(frame.points)} tokens at step {frame.step:,}. How far apart two tokens of "
            f"the same group sit, compared with two tokens picked at random (1.00 = as scattered as everything, "
            f"lower = gathered together), tightest first: {parts}.")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.embeddings:fit_axes", "engine.look_inside.embeddings:project")


def render(params: EmbeddingMapParams, key: str) -> None:
    source = model_source.pick(session.learner().id, key=f"{key}-source")
    left, right = st.columns(2)
    zoom = left.toggle("Zoom in on this step", key=f"{key}-zoom",
                       help="Off: the same scale for every step, so you see the rows grow and move. On: the scale "
                            "fits this step's points, so you can see how they are arranged.")
    dims = 3 if params.allow_3d and right.toggle("Show three axes (3-D, drag to turn it)", key=f"{key}-3d") else 2
    rp: RunProjection = run_projection(source.run_dir, dims=3)
    steps = list(rp.steps)
    step = st.select_slider("Training step (drag to replay training)", options=steps, key=f"{key}-step",
                            value=steps[0] if params.start_at == "first" else steps[-1],
                            format_func=lambda s: f"{s:,}")
    frame = rp.frame(step)
    bounds = rp.bounds[:dims] if not zoom else tuple(
        (min(c), max(c)) for c in ([getattr(p, a) for p in frame.points] for a in "xyz"[:dims]))
    st.plotly_chart(chart(frame, bounds, dims), key=f"{key}-chart", config={"displayModeBar": dims == 3})
    st.caption(variance_caption(frame, dims))
    st.markdown(summary(frame, dims))
    scale = "zoomed in on this step" if zoom else "on one scale for every step"
    st.caption(f"Axes fitted once on step {rp.fit_step:,}, the end of training, and kept for every step, so a "
               f"token that moves on screen really moved; the plot is {scale}. Hover a point to read its token; "
               "␣ is a space, ⏎ a newline.")
