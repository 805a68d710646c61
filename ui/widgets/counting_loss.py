"""Lesson 2: the loss as surprise. Set a probability and see −ln p; then see what counting models score on held-out
Shakespeare, and how surprised the character-pairs model is by each character of a line you type."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from course.widgets import CountingLossParams
from engine.transform.baseline import CountLosses, CountModel, count_losses, fit_counts, surprise_line
from engine.transform.data import TextDataset
from engine.transform.tokenization import CharTokenizer
from ui import learner_corpus
from ui.text import escape_md
from ui.token_chips import visible

PROBABILITIES = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]


@st.cache_resource(show_spinner="Counting characters and pairs in the training text...", max_entries=4)
def _fitted(corpus: str) -> tuple[CharTokenizer, CountModel, CountLosses]:
    """Fitted on the first 90% of the corpus, scored on the last 10%: the same split a training run uses."""
    text = learner_corpus.bundled_text(corpus)
    tokenizer = CharTokenizer.from_text(text)
    data = TextDataset(text, tokenizer)
    return tokenizer, fit_counts(data.train, tokenizer.vocab_size), count_losses(data.train, data.val,
                                                                                  tokenizer.vocab_size)


def surprise_chart(chars: list[str], losses: list[float], probabilities: list[float]) -> go.Figure:
    # numbered by place in the line (the first character is not scored: it has no character before it), which also
    # keeps a repeated character its own bar
    labels = [f"{i + 2}·{visible(ch)}" for i, ch in enumerate(chars)]
    fig = go.Figure(go.Bar(x=labels, y=losses, customdata=probabilities,
                           hovertemplate="%{x}<br>p = %{customdata:.3f}<br>loss = −ln p = %{y:.2f}<extra></extra>"))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=40), xaxis=dict(type="category"),
                      xaxis_title="each character of your line, scored given the one before it", yaxis_title="loss = −ln p (nats)")
    return fig


def surprise_text(chars: list[str], losses: list[float]) -> str:
    """Every bar of the surprise chart in words, numbered as the chart numbers them (for a screen reader).

    >>> surprise_text(["h", "e"], [0.51, 2.3])
    'Chart as text, loss per character: 2·h 0.51, 3·e 2.30.'
    """
    bars = ", ".join(f"{i + 2}·{escape_md(visible(ch))} {loss:.2f}"
                     for i, (ch, loss) in enumerate(zip(chars, losses, strict=True)))
    return f"Chart as text, loss per character: {bars}."


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.baseline:fit_counts", "engine.transform.baseline:score")


def render(params: CountingLossParams, key: str) -> None:
    tokenizer, model, losses = _fitted(params.corpus)

    st.markdown("**1 · Score one guess.** Say the model gave the right next character this probability:")
    p = st.select_slider("Probability given to the right character", PROBABILITIES, value=0.5, key=f"{key}-p")
    st.markdown(f"loss = −ln **{p:g}** = **{-math.log(p):.2f}** nats")

    st.markdown("**2 · Three models that only count**, each fitted on 90% of the text and scored on the other "
                "10%, text it never counted:")
    a, b, c = st.columns(3)
    a.metric("Random guessing", f"{losses.uniform:.2f}", help=f"Every one of the {losses.vocab_size} characters "
             f"equally likely: −ln(1/{losses.vocab_size}) = ln {losses.vocab_size}.")
    b.metric("Character counts", f"{losses.counts:.2f}",
             help="p(next) = how often that character appears in the training text, ignoring what came before.")
    c.metric("Character pairs", f"{losses.pairs:.2f}" if losses.pairs is not None else "–",
             help="p(next | previous) = how often the previous character was followed by this one: the "
                  "next-character counts from earlier in this lesson, turned into a model.")

    st.markdown("**3 · How surprised is the character-pairs model by your line?**")
    line = st.text_input("A line to score", value=params.line, key=f"{key}-line", max_chars=80)
    known = [ch for ch in line if ch in tokenizer.vocab()]
    if len(known) < 2:
        st.info("Type at least two characters that appear in Shakespeare.")
        return
    rows = surprise_line(model, tokenizer.encode("".join(known)), known)
    st.plotly_chart(surprise_chart([r.char for r in rows], [r.loss for r in rows], [r.p for r in rows]),
                    key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(surprise_text([r.char for r in rows], [r.loss for r in rows]))
    mean = sum(r.loss for r in rows) / len(rows)
    worst = max(rows, key=lambda r: r.loss)
    st.caption(f"Average over your line: **{mean:.2f}** nats per character. Most surprising: "
               f"`{visible(worst.char)}` after `{visible(worst.previous)}` (p = {worst.p:.3f}, loss {worst.loss:.2f}).")
    if len(known) < len(line):
        st.caption("Characters Shakespeare never uses were left out: the model has no row for them.")
