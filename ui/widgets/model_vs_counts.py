"""Lesson 8: a character model's next-character probabilities for a short context, beside how often each
character really follows that context in the text it trained on (`engine.transform.next_token.following_counts`, lesson 2's
counts), as one grouped bar chart. The counts are taken over the training part of the text (its first 90%, the
split engine.transform.data makes), so both bars describe the same text."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import ModelVsCountsParams
from engine.extract.bundled import entry
from engine.look_inside.sampling import next_token_distribution
from engine.transform.next_token import FollowingCounts, following_counts
from engine.transform.tokenization import CharTokenizer
from ui import learner_corpus, model_source, session
from ui.text import escape_md

TRAIN_FRACTION = 0.9  # engine.transform.data.TextDataset: the first 90% is the training text
MODEL_COLOUR = "#e4572e"
TEXT_COLOUR = "#4c78a8"


@st.cache_data(show_spinner=False, max_entries=128)
def _counts(corpus: str, context: str) -> FollowingCounts:
    text = learner_corpus.bundled_text(corpus)
    return following_counts(text[: int(len(text) * TRAIN_FRACTION)], context, top_k=100)


def rows(counts: FollowingCounts, model_probs: dict[str, float], show: int) -> list[tuple[str, float, float]]:
    """(label, share in the text, model probability) for the characters that most often follow the context.

    >>> c = following_counts("tha the thi the", "th")
    >>> rows(c, {"e": 0.4, "a": 0.3, "i": 0.1}, show=2)
    [('e', 0.5, 0.4), ('a', 0.25, 0.3)]
    """
    return [(r.label, r.share, model_probs.get(r.char, 0.0)) for r in counts.rows[:show]]


def chart(data: list[tuple[str, float, float]]) -> go.Figure:
    labels = [d[0] for d in data]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[d[1] for d in data], name="share in the training text (counted)", marker_color=TEXT_COLOUR,
                text=[f"{d[1]:.0%}" for d in data], textposition="outside",
                hovertemplate="%{x}: follows in %{y:.1%} of cases<extra></extra>")
    fig.add_bar(x=labels, y=[d[2] for d in data], name="the model's probability", marker_color=MODEL_COLOUR,
                text=[f"{d[2]:.0%}" for d in data], textposition="outside",
                hovertemplate="%{x}: the model gives %{y:.1%}<extra></extra>")
    top = max([d[1] for d in data] + [d[2] for d in data] + [0.05])
    fig.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=10, b=40),
                      yaxis=dict(title="how likely next", tickformat=".0%", range=[0, min(1.0, top) * 1.18]),
                      xaxis=dict(title="next character", type="category"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def chart_text(data: list[tuple[str, float, float]]) -> str:
    """Both bars of every character in words (a screen reader gets what the chart shows).

    >>> chart_text([("e", 0.5, 0.4), ("a", 0.25, 0.3)])
    'Chart as text, share in the training text against the model: e 50% against 40%, a 25% against 30%.'
    """
    pairs = ", ".join(f"{escape_md(label)} {share:.0%} against {p:.0%}" for label, share, p in data)
    return f"Chart as text, share in the training text against the model: {pairs}."


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.sampling:next_token_distribution", "engine.transform.next_token:following_counts")


def render(params: ModelVsCountsParams, key: str) -> None:
    source = model_source.pick(session.learner().id, key=f"{key}-source")
    model, tokenizer = model_source.load_model(source)
    if not isinstance(tokenizer, CharTokenizer):
        st.info("This comparison needs a model that reads one character at a time; the model shown uses a BPE "
                "tokenizer, whose tokens do not line up with single characters.")
        return
    title = entry(params.corpus).title
    context = st.text_input("Context", value=params.context, key=f"{key}-context", max_chars=20,
                            help="A few characters; spaces count. Try 'th', 'q', 'ROMEO', 'the '.")
    if not context:
        st.info("Type a few characters of context.")
        return
    counts = _counts(params.corpus, context)
    shown = escape_md(context.replace("\n", "⏎"))
    if counts.occurrences == 0:
        st.warning(f"“{shown}” never appears in the training text of {escape_md(title)}, so there is nothing to "
                   "count. The model still answers, but nothing in its training told it what to say here.")
        return
    try:
        dist = next_token_distribution(model, tokenizer, context, show=tokenizer.vocab_size)
    except ValueError as err:
        st.warning(escape_md(str(err)))
        return
    probs = {tokenizer.id_to_token(c.id): c.raw for c in dist.candidates}
    data = rows(counts, probs, params.show)
    st.caption(f"Counts from **{escape_md(title)}** (its first 90%, the training text"
               + (", the text lesson 7's run trains on" if source.own else ", the text this model trained on")
               + f"). “{shown}” appears there **{counts.occurrences:,}** times.")
    st.plotly_chart(chart(data), key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(chart_text(data))
    gap = max(abs(share - p) for _, share, p in data)
    model_top = dist.candidates[0]
    text_top = counts.rows[0]
    st.markdown(f"The text's most common next character is **{escape_md(text_top.label)}** "
                f"({text_top.share:.0%} of the time); the model's likeliest is **{escape_md(model_top.text)}** "
                f"({model_top.raw:.0%}). Over the {len(data)} characters shown, the two bars differ by at most "
                f"**{gap * 100:.0f} percentage points**.")
