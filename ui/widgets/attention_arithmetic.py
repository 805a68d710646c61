"""One attention computation worked with its numbers: for one head and one query position of a short prompt, the
query and keys, each q·k, the scale 1/√hs, the mask, the softmax and the weighted sum of the values
(`engine.look_inside.attention_steps.attention_steps`), on the learner's run or the reference model.

The last step checks the result against the model's own attention row (the row the heatmap two cards earlier
draws) and its own head output, so the learner sees that the arithmetic on screen is what the model does.
The prompt is kept to a few tokens: every token is a row of the table, and a learner follows one row at a time.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from course.widgets import AttentionArithmeticParams
from engine.look_inside.attention_steps import TOLERANCE, AttentionSteps, attention_steps
from ui import model_source, session
from ui.text import escape_md, markdown_table

MAX_TOKENS = 12  # rows of the worked table: enough for a word or two, few enough to read row by row
SHOWN = 6  # numbers of each vector shown before the expander (the dot product uses all of them)


@st.cache_data(show_spinner="Working through the attention...", max_entries=64)
def _steps(run_dir: str, step: int, prompt: str, layer: int, head: int) -> list[AttentionSteps]:
    """Every query position of the prompt for one head (a dozen rows at most, milliseconds each)."""
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    first = attention_steps(model, tokenizer, prompt, layer, head, 0, max_tokens=MAX_TOKENS)
    return [first] + [attention_steps(model, tokenizer, prompt, layer, head, q, max_tokens=MAX_TOKENS)
                      for q in range(1, len(first.tokens))]


def num(x: float) -> str:
    """A number as the tables show it: 4 decimals, big ones (an e^score can be) with thousands separators.

    >>> num(0.123456), num(-2.5), num(38184.27)
    ('0.1235', '-2.5000', '38,184.3')
    """
    return f"{x:,.1f}" if abs(x) >= 1000 else f"{x:.4f}"


def tok(steps: AttentionSteps, pos: int, md: bool = True) -> str:
    """A position: its token and its position number; as Markdown (escaped: it is learner text) or plain text for a
    data frame.

    >>> s = AttentionSteps(["R", "*"], 0, 0, 0, 1, 2, False, False, [], [], 1.0, [], [], [], 0.0, 0.0)
    >>> tok(s, 1), tok(s, 1, md=False)
    ('“\\\\*” ·1', '“*” ·1')
    """
    text = steps.tokens[pos]
    return f"“{escape_md(text) if md else text}” ·{pos}"


def vectors(steps: AttentionSteps, md: bool = True) -> list[tuple[str, list[float]]]:
    """The query, then each allowed position's key, labelled."""
    rows = [(f"{'**q**' if md else 'q'} {tok(steps, steps.query_pos, md)}", steps.query)]
    return rows + [(f"k {tok(steps, k.position, md)}", k.key) for k in steps.keys if not k.masked]


def values(steps: AttentionSteps, md: bool = True) -> list[tuple[str, float | None, list[float]]]:
    """Each allowed position's value with its weight, then the output (no weight of its own)."""
    rows: list[tuple[str, float | None, list[float]]] = [
        (f"v {tok(steps, k.position, md)}", k.weight, k.value) for k in steps.keys if not k.masked]
    return rows + [("**output**" if md else "output", None, steps.output)]


def md_rows(labelled: list[tuple[str, list[float]]], count: int, head: str = "vector") -> list[dict[str, str]]:
    """Labelled vectors as Markdown table rows: the first `count` numbers of each, 4 decimals.

    >>> md_rows([("q", [0.5, -1.25, 3.0])], 2)
    [{'vector': 'q', '#1': '0.5000', '#2': '-1.2500'}]
    """
    return [{head: name, **{f"#{i + 1}": num(x) for i, x in enumerate(vec[:count])}} for name, vec in labelled]


def frame(labelled: list[tuple[str, list[float]]]) -> dict[str, list[float]]:
    """Labelled vectors as data-frame columns, one column per vector, one row per number: all of them.

    >>> frame([("q", [0.5, -1.25])])
    {'#': [1, 2], 'q': [0.5, -1.25]}
    """
    size = len(labelled[0][1])
    return {"#": list(range(1, size + 1)), **{name: [round(x, 4) for x in vec] for name, vec in labelled}}


def score_rows(steps: AttentionSteps) -> list[dict[str, str]]:
    """One row per key position, from q·k to weight; masked later positions say so; a last row sums."""
    hs = steps.head_size
    rows = []
    for k in steps.keys:
        if k.masked:
            rows.append({"key position": tok(steps, k.position), "q·k": "masked (later position)",
                         f"÷ √{hs} = score": "", "e^score": "", "weight": "0"})
        else:
            rows.append({"key position": tok(steps, k.position), "q·k": num(k.dot), f"÷ √{hs} = score": num(k.score),
                         "e^score": num(k.exp), "weight": f"{k.weight:.4f}"})
    rows.append({"key position": "**sum**", "q·k": "", f"÷ √{hs} = score": "", "e^score": f"**{num(steps.exp_sum)}**",
                 "weight": f"**{sum(steps.weights):.4f}**"})
    return rows


def follow_one_row(steps: AttentionSteps) -> str:
    """The row with the most weight, read left to right in words."""
    k = max((k for k in steps.keys if not k.masked), key=lambda k: k.weight)
    return (f"Follow the row of {tok(steps, k.position)}, which gets the most weight: q·k = {num(k.dot)}; "
            f"divided by √{steps.head_size} = {steps.head_size ** 0.5:.3f} that is a score of {num(k.score)}; "
            f"e^{num(k.score)} = {num(k.exp)}; and {num(k.exp)} ÷ {num(steps.exp_sum)} (the sum) = "
            f"**{k.weight:.4f}**.")


def value_rows(steps: AttentionSteps, count: int) -> list[dict[str, str]]:
    """Each allowed position's weight and value (first `count` numbers), then the output: their weighted sum."""
    rows = []
    for name, weight, vec in values(steps):
        bold = "**" if weight is None else ""
        row = {"vector": name, "weight": "" if weight is None else f"{weight:.4f}"}
        rows.append(row | {f"#{i + 1}": f"{bold}{num(x)}{bold}" for i, x in enumerate(vec[:count])})
    return rows


def chart(steps: AttentionSteps) -> go.Figure:
    """The weights as bars, one per key position; masked positions are labelled and have no bar."""
    T = len(steps.tokens)
    fig = go.Figure(go.Bar(
        x=list(range(T)), y=steps.weights, text=[f"{w:.2f}" if not k.masked else "masked"
                                                 for w, k in zip(steps.weights, steps.keys, strict=True)],
        textposition="outside", cliponaxis=False,
        customdata=[f"{steps.tokens[steps.query_pos]} → {t}" for t in steps.tokens],
        hovertemplate="%{customdata}: %{y:.4f}<extra></extra>",
    ))
    fig.update_layout(
        height=240, margin=dict(l=10, r=10, t=20, b=10), showlegend=False,
        xaxis=dict(tickmode="array", tickvals=list(range(T)), ticktext=[f"{t} ·{i}" for i, t in enumerate(steps.tokens)],
                   tickfont=dict(family="monospace"), title="key position"),
        yaxis=dict(range=[0, 1.15], title="weight", tickformat=".1f"),
    )
    return fig


def small(x: float) -> str:
    """A tiny difference written out in decimals, which a learner reads more easily than 3e-09.

    >>> small(3.04e-09), small(0.0), small(0.25)
    ('0.000000003', '0', '0.25')
    """
    if x == 0:
        return "0"
    digits = max(2, -math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}"


def check_line(steps: AttentionSteps) -> str:
    """The check, in words: the weights against the heatmap's row, the output against the model's."""
    where = f"layer {steps.layer + 1}, head {steps.head + 1}, row {tok(steps, steps.query_pos)}"
    if steps.matches:
        return (f"**Matches the heatmap row ✓** Every weight above equals the model's own attention weight for {where}, "
                f"and the output equals the head output the model computes in its own forward pass. The largest "
                f"differences, {small(steps.weights_gap)} and {small(steps.output_gap)}, are rounding: the model "
                f"keeps fewer decimals than this page.")
    return (f"**Does not match ✗** The weights differ from the model's own for {where} by up to "
            f"{small(steps.weights_gap)}, and the output by up to {small(steps.output_gap)}: more than "
            f"{small(TOLERANCE)}.")


def heatmap_row(steps: AttentionSteps) -> str:
    """The model's own row as the heatmap's hover shows it (two decimals), to find it there.

    >>> s = AttentionSteps(["a", "b"], 0, 0, 1, 0, 2, False, False, [], [], 1.0, [], [1.0, 0.0], [], 0.0, 0.0)
    >>> heatmap_row(s)
    'In the heatmap (layer 1, head 2, the same prompt) the row of “a” ·0 reads 1.00 · 0.00.'
    """
    return (f"In the heatmap (layer {steps.layer + 1}, head {steps.head + 1}, the same prompt) the row of "
            f"{tok(steps, steps.query_pos)} reads {' · '.join(f'{w:.2f}' for w in steps.model_weights)}.")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.attention_steps:attention_steps", "engine.transform.model:CausalSelfAttention.forward")


def render(params: AttentionArithmeticParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    model, _ = model_source.load_model(source)
    c = model.config
    prompt = st.text_input("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=40,
                           help=f"A short text: the worked example keeps its last {MAX_TOKENS} tokens, one table row "
                                f"each, so you can follow every row.")
    if not prompt:
        st.info("Type a short prompt to work through its attention.")
        return
    left, right = st.columns(2)
    layer = left.selectbox("Layer", list(range(c.n_layer)), index=min(params.layer, c.n_layer) - 1,
                           format_func=lambda i: f"layer {i + 1} of {c.n_layer}", key=f"{key}-layer")
    head = right.selectbox("Head", list(range(c.n_head)), index=min(params.head, c.n_head) - 1,
                           format_func=lambda i: f"head {i + 1} of {c.n_head}", key=f"{key}-head")
    try:
        rows = _steps(source.run_dir, source.final_step, prompt, layer, head)
    except ValueError as err:
        st.warning(f"The model cannot read this prompt: {escape_md(str(err))}. A character model only knows the "
                   "characters of its training text.")
        return
    tokens = rows[0].tokens
    T = len(tokens)
    if rows[0].dropped:
        st.caption(f"Your prompt is {T + rows[0].dropped} tokens. This worked example keeps its last {T}, one table "
                   f"row each; the arithmetic is the same for a prompt of any length, only with more rows.")
    query_pos = st.segmented_control(
        "Query: the position doing the looking", list(range(T)), default=T - 1, required=True,
        format_func=lambda i: f"{tokens[i]} ·{i}", key=f"{key}-query-{T}",
        help="Each position computes its own row of weights. Pick which one to work through.")
    steps = rows[T - 1 if query_pos is None else query_pos]  # (required: None only before the first click lands)
    query_pos = steps.query_pos
    hs = steps.head_size
    st.markdown(f"Layer {layer + 1}, head {head + 1}: how much does position {tok(steps, query_pos)} take from each "
                f"position up to itself? This is one row of the heatmap, worked out number by number.")

    st.markdown(f"**1 · The query and the keys.** In this head every query, key and value holds **{hs}** numbers "
                f"(C = {c.n_embd} ÷ {c.n_head} heads). Here are the first {min(SHOWN, hs)} of each; the dot product "
                f"uses all {hs}.")
    st.markdown(markdown_table(md_rows(vectors(steps), SHOWN)))
    refinements = [name for name, on in (("QK-norm", steps.qk_norm), ("rotary positions", steps.rope)) if on]
    if refinements:
        st.caption(f"This model uses {' and '.join(refinements)}: the query and keys are shown after "
                   f"{'them' if len(refinements) > 1 else 'it'}, as they are when matched.")
    with st.expander(f"All {hs} numbers of the query and each key"):
        st.dataframe(frame(vectors(steps, md=False)), hide_index=True, key=f"{key}-qk-all")

    st.markdown(f"**2 · Match, scale, softmax.** One row per position. For each one the query may look at: the dot "
                f"product q·k, divided by √{hs}, then e to the power of that score, then each e^score divided by "
                f"their sum. Later positions are masked before any of this, so their weight is exactly 0.")
    st.markdown(markdown_table(score_rows(steps)))
    st.markdown(follow_one_row(steps))
    st.plotly_chart(chart(steps), key=f"{key}-chart", config={"displayModeBar": False})

    st.markdown(f"**3 · Mix the values.** Each allowed position's value, multiplied by its weight, all added up: "
                f"the head's output for {tok(steps, query_pos)}, {hs} numbers (the first {min(SHOWN, hs)} shown).")
    st.markdown(markdown_table(value_rows(steps, SHOWN)))
    with st.expander(f"All {hs} numbers of each value and the output"):
        st.dataframe(frame([(name, vec) for name, _, vec in values(steps, md=False)]), hide_index=True,
                     key=f"{key}-v-all")
    st.caption(f"The {c.n_head} heads' outputs are laid end to end into {c.n_embd} numbers, mixed by one more matrix, "
               f"and added onto the position's vector.")

    st.markdown("**4 · Check against the model.**")
    (st.success if steps.matches else st.error)(check_line(steps), icon=(":material/check_circle:" if steps.matches
                                                                        else ":material/error:"))
    st.caption(heatmap_row(steps) + " Later positions change nothing here (the mask), so the same row sits at the "
               "top of the heatmap for any prompt that starts with these tokens.")
