"""Where each position looks: one head's attention weights over the learner's prompt, as a heatmap with the
prompt's tokens on both axes (`engine.look_inside.inspection.attention_view`), from the learner's run or the reference model.

Rows are queries (the position doing the looking), columns are keys (the positions it may look at). Above the
diagonal every weight is 0: the causal mask. Tokens can repeat ("e" in "yonder" and "light"), so the axes are
positions with the token text as tick labels, not categories that would merge repeats.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import AttentionHeatmapParams
from engine.look_inside.inspection import AttentionView, attention_view
from ui import model_source, session
from ui.text import escape_md


@st.cache_data(show_spinner="Running the model on your prompt...", max_entries=64)
def _view(run_dir: str, step: int, prompt: str) -> AttentionView:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    return attention_view(model, tokenizer, prompt)


def labels(tokens: list[str]) -> list[str]:
    """Tick labels: the token with its position, so repeated tokens stay apart.

    >>> labels(["a", "␣", "a"])
    ['a ·0', '␣ ·1', 'a ·2']
    """
    return [f"{t} ·{i}" for i, t in enumerate(tokens)]


def chart(view: AttentionView, layer: int, head: int) -> go.Figure:
    """Heatmap of weights[layer][head]: query positions down, key positions across; hover names both tokens."""
    grid = view.weights[layer][head]
    T = len(view.tokens)
    hover = [[f"{view.tokens[q]} → {view.tokens[k]}: {grid[q][k]:.2f}" + ("  (masked: later position)" if k > q else "")
              for k in range(T)] for q in range(T)]
    ticks = labels(view.tokens)
    shown = [[w if k <= q else None for k, w in enumerate(row)] for q, row in enumerate(grid)]  # masked: no colour
    fig = go.Figure(go.Heatmap(
        z=shown, x=list(range(T)), y=list(range(T)), zmin=0, zmax=1, colorscale="Viridis", customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", hoverongaps=True, xgap=1, ygap=1,
        colorbar=dict(title=dict(text="weight", side="right"), thickness=12),
    ))
    axis = dict(tickmode="array", tickvals=list(range(T)), ticktext=ticks, tickfont=dict(size=11, family="monospace"),
                showgrid=False, zeroline=False)
    fig.update_layout(
        height=max(360, 14 * T + 160), margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(axis, title="key: the position looked at", side="top", tickangle=-90),
        yaxis=dict(axis, title="query: the position doing the looking", autorange="reversed", scaleanchor="x"),
    )
    return fig


def summary(view: AttentionView, layer: int, head: int) -> str:
    """One line for every reader, screen readers included: where the last position looks most in this head.

    >>> v = AttentionView(["a", "b", "c"], 0, 1, 1, [[[[1, 0, 0], [0.5, 0.5, 0], [0.7, 0.2, 0.1]]]])
    >>> summary(v, 0, 0)
    'Layer 1, head 1: the last position (“c”) takes the most, 70%, from position 0 (“a”).'
    """
    row = view.weights[layer][head][-1]
    k = max(range(len(row)), key=row.__getitem__)
    last = len(row) - 1
    where = "itself" if k == last else f"position {k} (“{escape_md(view.tokens[k])}”)"
    return (f"Layer {layer + 1}, head {head + 1}: the last position (“{escape_md(view.tokens[-1])}”) takes the most, "
            f"{row[k]:.0%}, from {where}.")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.model:CausalSelfAttention.forward", "engine.look_inside.inspection:attention_view")


def render(params: AttentionHeatmapParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    model, _ = model_source.load_model(source)
    block = model.config.block_size
    prompt = st.text_input("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=400,
                           help=f"Any text. The model reads at most {block} tokens; a longer prompt keeps its end.")
    if not prompt:
        st.info("Type a prompt to see where the model looks.")
        return
    view = _view(source.run_dir, source.final_step, prompt)
    left, right = st.columns(2)
    layer = left.selectbox("Layer", list(range(view.n_layer)), index=min(params.layer, view.n_layer) - 1,
                           format_func=lambda i: f"layer {i + 1} of {view.n_layer}", key=f"{key}-layer")
    head = right.selectbox("Head", list(range(view.n_head)), index=min(params.head, view.n_head) - 1,
                           format_func=lambda i: f"head {i + 1} of {view.n_head}", key=f"{key}-head")
    T = len(view.tokens)
    if view.dropped:
        st.caption(f"Your prompt is {T + view.dropped:,} tokens, longer than the {block} this model can read at "
                   f"once, so only its last {T} are shown ({view.dropped:,} cut from the start).")
    st.markdown(f"**{T} tokens**, so this head fills a **{T} × {T}** grid: **{T * T:,}** weights, one per "
                f"(query, key) pair. Each row sums to 1; everything above the diagonal is 0, because no position "
                f"may look at a later one.")
    st.plotly_chart(chart(view, layer, head), key=f"{key}-chart", config={"displayModeBar": False})
    st.markdown(summary(view, layer, head))
    st.caption(f"Empty squares above the diagonal are masked: their weight is exactly 0. "
               f"`␣` is a space and `↵` a line break; the small number after each token is its position. "
               f"This model has {view.n_layer} layers of {view.n_head} heads each: "
               f"{view.n_layer * view.n_head} grids like this one for every prompt.")
