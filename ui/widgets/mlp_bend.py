"""Why the MLP needs its bend: one block's real MLP on two positions of the learner's prompt, with its GELU and with
the GELU taken out (`engine.look_inside.mlp_bend.mlp_bend`), from the learner's run or the reference model.

Top: the GELU curve, with the 4C numbers of position a drawn on it as dots (which units it switches on, which off).
Then two columns: does the MLP add up, mlp(a + b) against mlp(a) + mlp(b), with the bend and without it; and the
fact that without it the two matrices collapse into one C × C matrix. Every number is computed from the model.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from course.widgets import MlpBendParams
from engine.look_inside.mlp_bend import Additivity, MlpBend, mlp_bend, prompt_tokens
from ui import model_source, session
from ui.text import escape_md

SHOWN = 8  # how many of the C output numbers the small bar charts draw
# Colours that stand out at least 3:1 on both the light and the dark theme's background (tests/ui/test_mlp_bend.py).
OFF_COLOUR = "#8a8a8a"  # grey: units GELU switches off
ON_COLOUR = "#2e86de"  # blue: units it passes on
LINE_COLOUR = "#e4572e"  # the GELU curve
PARTS_COLOUR = "#2e86de"  # bars: what adding up predicts
JOINT_COLOUR = "#d95f02"  # bars: what the MLP gives for a + b


@st.cache_data(show_spinner="Running the model's MLP...", max_entries=64)
def _view(run_dir: str, step: int, prompt: str, layer: int, a: int, b: int) -> MlpBend:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    return mlp_bend(model, tokenizer, prompt, layer, a, b)


def plain(x: float) -> str:
    """A number in plain decimals (no "e-06"), with two significant digits once it is small.

    >>> plain(18.5469), plain(0.0000154), plain(0.0), plain(1234.5), plain(-0.004)
    ('18.55', '0.000015', '0', '1,234.50', '-0.0040')
    """
    if x == 0:
        return "0"
    if abs(x) >= 0.01:
        return f"{x:,.2f}"
    return f"{x:.{1 - math.floor(math.log10(abs(x)))}f}"


def percent(share: float) -> str:
    """A share as a percentage: whole percents once it is 1% or more, else plain decimals (float rounding shows).

    >>> percent(0.4567), percent(0.00000027), percent(0.0)
    ('46%', '0.000027%', '0%')
    """
    return f"{100 * share:.0f}%" if share >= 0.01 else f"{plain(100 * share)}%"


def token_label(tokens: list[str], i: int) -> str:
    """A position as the learner sees it: the token and its position, so repeated tokens stay apart.

    >>> token_label(["a", "␣", "a"], 2)
    '“a” ·2'
    """
    return f"“{tokens[i]}” ·{i}"


def curve_chart(view: MlpBend) -> go.Figure:
    """GELU as a line, and position a's 4C hidden numbers as dots on it (x: what goes in, y: what comes out), the
    units switched off (left of 0) and on (right of 0) as two groups so the legend counts them."""
    where = token_label(view.tokens, view.a)
    fig = go.Figure()
    for name, colour, keep in ((f"{view.n_hidden - view.on_a} switched off at {where}", OFF_COLOUR, lambda h: h <= 0),
                               (f"{view.on_a} switched on at {where}", ON_COLOUR, lambda h: h > 0)):
        units = [(i, h, y) for i, (h, y) in enumerate(zip(view.hidden_a, view.bent_a, strict=True)) if keep(h)]
        fig.add_trace(go.Scatter(
            x=[h for _, h, _ in units], y=[y for _, _, y in units], mode="markers", name=name,
            marker=dict(size=7, opacity=0.7, color=colour), customdata=[i + 1 for i, _, _ in units],
            hovertemplate="unit %{customdata}: in %{x:.2f} → out %{y:.2f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[x for x, _ in view.curve], y=[y for _, y in view.curve], mode="lines", name="GELU",
                             line=dict(width=2, color=LINE_COLOUR), hoverinfo="skip"))  # drawn last: the line stays visible over the dots
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=40), legend=dict(orientation="h", y=1.12),
                      xaxis_title="number going into GELU", yaxis_title="number coming out")
    return fig


def curve_text(view: MlpBend) -> str:
    """The chart in words: GELU at both ends and at its dip, and how position a's numbers spread over it.

    >>> curve_text(_example())
    'Chart as text: GELU gives 0.00 at -4.00, dips to -0.17 at -0.75 and gives 4.00 at 4.00; the 4 numbers at “a” ·0 run from -1.00 to 2.00, 2 of them above 0.'
    """
    (x0, y0), (x1, y1) = view.curve[0], view.curve[-1]
    xm, ym = min(view.curve, key=lambda p: p[1])  # the bottom of the dip, just left of 0
    y0 = 0.0 if abs(y0) < 0.005 else y0  # no "-0.00"
    return (f"Chart as text: GELU gives {y0:.2f} at {x0:.2f}, dips to {ym:.2f} at {xm:.2f} and gives {y1:.2f} at "
            f"{x1:.2f}; the {view.n_hidden} numbers at {token_label(view.tokens, view.a)} run from "
            f"{min(view.hidden_a):.2f} to {max(view.hidden_a):.2f}, {view.on_a} of them above 0.")


def parts_label(view: MlpBend) -> str:
    """What adding up predicts, as the bars name it: with biases, the fixed vector mlp(0) is taken off once."""
    return "mlp(a) + mlp(b) − mlp(0)" if view.bias else "mlp(a) + mlp(b)"


def joint_label(view: MlpBend) -> str:
    return "mlp(a + b) − mlp(0)" if view.bias else "mlp(a + b)"


def sum_chart(add: Additivity, view: MlpBend) -> go.Figure:
    """The first SHOWN output numbers: adding up the two answers, beside the answer for the sum, as paired bars."""
    n = min(SHOWN, len(add.parts))
    xs = [str(i + 1) for i in range(n)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=xs, y=add.parts[:n], name=parts_label(view), marker_color=PARTS_COLOUR,
                         hovertemplate="number %{x}: %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Bar(x=xs, y=add.joint[:n], name=joint_label(view), marker_color=JOINT_COLOUR,
                         hovertemplate="number %{x}: %{y:.3f}<extra></extra>"))
    fig.update_layout(height=240, margin=dict(l=10, r=10, t=10, b=40), barmode="group",
                      legend=dict(orientation="h", y=1.2), xaxis_title=f"output number (first {n} of {view.n_embd})",
                      yaxis_title="value")
    return fig


def sum_text(add: Additivity, view: MlpBend) -> str:
    """The bars in words, pair by pair.

    >>> sum_text(Additivity([1.0, -0.5], [1.25, -0.5], 0.25, 1.1), _example())
    'Chart as text, mlp(a) + mlp(b) against mlp(a + b): 1: 1.00 / 1.25; 2: -0.50 / -0.50.'
    """
    n = min(SHOWN, len(add.parts))
    pairs = "; ".join(f"{i + 1}: {p:.2f} / {j:.2f}" for i, (p, j) in enumerate(zip(add.parts[:n], add.joint[:n],
                                                                                   strict=True)))
    return f"Chart as text, {parts_label(view)} against {joint_label(view)}: {pairs}."


def gap_line(add: Additivity, view: MlpBend) -> str:
    """How far the MLP is from adding up, as a length and as a share of what adding up predicts.

    >>> gap_line(Additivity([3.0, 4.0], [3.0, 4.5], 0.5, 5.0), _example())
    'mlp(a + b) differs from mlp(a) + mlp(b) by **0.50**: **10%** of the length of mlp(a) + mlp(b).'
    """
    return (f"{joint_label(view)} differs from {parts_label(view)} by **{plain(add.gap)}**: "
            f"**{percent(add.share)}** of the length of {parts_label(view)}.")


def _example() -> MlpBend:
    """A tiny hand-made view for the doctests."""
    zero = Additivity([0.0], [0.0], 0.0, 0.0)
    return MlpBend(["a", "b"], 0, 0, 1, 0, 1, 1, 4, False, [(-4.0, -0.0001), (-0.75, -0.17), (0.0, 0.0), (4.0, 4.0)],
                   [-1.0, 0.5, 2.0, -0.2], [-0.16, 0.35, 1.95, -0.08], 2, 1, 1, -0.17, zero, zero, 0.0, 1, 8, 1)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.model:MLP.forward", "engine.look_inside.mlp_bend:mlp_bend")


def render(params: MlpBendParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    model, tokenizer = model_source.load_model(source)
    block, n_layer = model.config.block_size, model.config.n_layer
    prompt = st.text_input("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=200,
                           help=f"Any text. The model reads at most {block} tokens; a longer prompt keeps its end.")
    if not prompt:
        st.info("Type a prompt: its tokens become the vectors fed to the MLP.")
        return
    tokens, dropped = prompt_tokens(tokenizer, prompt, block)
    T = len(tokens)
    positions = list(range(T))
    left, mid, right = st.columns(3)
    layer = left.selectbox("Layer", list(range(n_layer)), index=min(params.layer, n_layer) - 1,
                           format_func=lambda i: f"layer {i + 1} of {n_layer}", key=f"{key}-layer")
    a = mid.selectbox("Token a", positions, index=0, format_func=lambda i: token_label(tokens, i),
                      key=f"{key}-a")
    b = right.selectbox("Token b", positions, index=T - 1, format_func=lambda i: token_label(tokens, i),
                        key=f"{key}-b")
    view = _view(source.run_dir, source.final_step, prompt, layer, a, b)
    ta, tb = escape_md(token_label(view.tokens, view.a)), escape_md(token_label(view.tokens, view.b))
    if dropped:
        st.caption(f"Your prompt is {T + dropped:,} tokens, longer than the {block} this model reads at once, so "
                   f"only its last {T} are used ({dropped:,} cut from the start).")
    st.markdown(f"In layer {view.layer + 1}, every position's vector reaches the MLP as **{view.n_embd} numbers** "
                f"(after attention and the norm). The MLP widens it to **{view.n_hidden}** numbers, passes each one "
                f"through **GELU**, the bend drawn below, and brings it back to {view.n_embd}. "
                f"Here **a** is the vector at {ta} and **b** the one at {tb}.")

    st.markdown("**1. The bend.** GELU leaves a positive number almost as it is, and squeezes a negative one to "
                "nearly 0. The dots are the numbers at a, one per hidden unit, placed on the curve.")
    st.plotly_chart(curve_chart(view), key=f"{key}-curve", config={"displayModeBar": False})
    st.caption(curve_text(view))
    off = view.n_hidden - view.on_a
    st.markdown(f"At {ta}, **{view.on_a}** of the {view.n_hidden} units sit right of 0: **switched on**, passed on "
                f"almost unchanged. The other **{off}** sit left of 0, where GELU gives back something between "
                f"{view.gelu_floor:.2f} and 0: **switched off**. At {tb}, {view.on_b} are on. "
                f"**{view.split}** units are on for one of the two tokens and off for the other.")

    st.markdown("**2. Does the MLP add up?** Feed it a and b one at a time and add the two answers; then feed it "
                "the sum a + b. A single matrix always gives the same result both ways.")
    with_bend, without_bend = st.columns(2)
    for column, add, title, name in ((with_bend, view.bent, "With the bend (the real MLP)", "bent"),
                                     (without_bend, view.straight, "Without the bend (GELU taken out)", "straight")):
        with column:
            st.markdown(f"**{title}**")
            st.markdown(gap_line(add, view))
            st.plotly_chart(sum_chart(add, view), key=f"{key}-{name}", config={"displayModeBar": False})
            st.caption(sum_text(add, view))
    st.markdown(f"With the bend the bars disagree: the units that are on for one token and off for the other do not "
                f"add up. Without it the bars match to the last digit shown; the leftover "
                f"{plain(view.straight.gap)} is float rounding.")

    C, H = view.n_embd, view.n_hidden
    fixed = " plus one fixed vector" if view.bias else ""
    st.markdown(f"**3. Without the bend, two layers are one matrix.** Widening ({H} × {C}) and then projecting back "
                f"({C} × {H}) is the same as multiplying by one {C} × {C} matrix{fixed}, "
                f"W = `c_proj` × `c_fc`: on every position of your prompt it gives the same numbers as the two layers "
                f"(largest difference {plain(view.collapse_diff)}, float rounding). The two layers hold "
                f"**{view.two_layer_params:,}** parameters; W holds **{view.one_matrix_params:,}**, "
                f"{view.two_layer_params / view.one_matrix_params:.0f} times fewer, for exactly the same job. "
                f"Stacking more layers like these would still give one matrix: depth would add nothing.")
    st.markdown(f"**With the bend, no matrix can do the MLP's job**: every matrix adds up, and the real MLP missed by "
                f"{percent(view.bent.share)}. The bend is what lets the MLP treat different inputs differently, "
                f"switching units on for some vectors and off for others.")
    notes = [f"W's rank is {view.collapse_rank}: however wide the middle ({H} numbers), what comes out of the two "
             f"layers without the bend never spans more than {C} directions, the most any {C} × {C} matrix can."]
    if view.bias:
        notes.append("This model's layers also add fixed vectors (biases), so mlp(a) + mlp(b) would count the fixed "
                     "part twice: mlp(0), the MLP's answer for a vector of zeros, is taken off once.")
    st.caption(" ".join(notes))
