"""Bigger vocabulary, shorter sequences: characters per token at several BPE vocabulary sizes, on the learner's
corpus (`engine.transform.tokenization.compression_table`), against the character tokenizer as a baseline.

A BPE is trained per size on an excerpt of at most `MAX_CHARS` characters (a few seconds in all), cached by the
excerpt's content hash and the sizes, so the page computes it once per corpus.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import VocabSweepParams
from engine.extract.corpus import content_hash
from engine.transform.tokenization import CompressionRow, compression_table
from ui import learner_tokenizer, session

MAX_CHARS = 300_000


@st.cache_data(show_spinner="Training one BPE per vocabulary size on your corpus...", max_entries=16)
def _table(text_hash: str, sizes: tuple[int, ...], _text: str) -> list[CompressionRow]:
    return compression_table(_text, list(sizes))


def interpretation(rows: list[CompressionRow]) -> str:
    """One or two sentences computed from the table: how much the biggest vocabulary shortens the text, and
    whether each step up buys less than the one before.

    >>> rows = [CompressionRow("char", 60, None, 1000, 1.0, 1.0), CompressionRow("bpe", 512, 512, 500, 2.0, 2.0),
    ...         CompressionRow("bpe", 1024, 1024, 400, 2.5, 2.5), CompressionRow("bpe", 2048, 2048, 360, 2.8, 2.8)]
    >>> interpretation(rows)  # doctest: +NORMALIZE_WHITESPACE
    'Going from 512 to 2,048 tokens in the vocabulary shortens this text by 28% (500 → 360 tokens). Each step up
    buys less: 512 → 1,024 saved 20% of the tokens, 1,024 → 2,048 only 10%.'
    """
    bpe = [r for r in rows if r.tokenizer == "bpe"]
    if len(bpe) < 2:
        return ""
    first, last = bpe[0], bpe[-1]
    cut = 1 - last.tokens / max(first.tokens, 1)
    text = (f"Going from {first.vocab_size:,} to {last.vocab_size:,} tokens in the vocabulary shortens this text "
            f"by {cut:.0%} ({first.tokens:,} → {last.tokens:,} tokens).")
    if len(bpe) >= 3:
        savings = [1 - b.tokens / max(a.tokens, 1) for a, b in zip(bpe, bpe[1:], strict=False)]
        (a0, a1), (z0, z1) = (bpe[0], bpe[1]), (bpe[-2], bpe[-1])
        if savings[-1] < savings[0]:
            text += (f" Each step up buys less: {a0.vocab_size:,} → {a1.vocab_size:,} saved {savings[0]:.0%} of the "
                     f"tokens, {z0.vocab_size:,} → {z1.vocab_size:,} only {savings[-1]:.0%}.")
        else:
            text += (f" On this text the gains have not levelled off yet: {z0.vocab_size:,} → {z1.vocab_size:,} "
                     f"still saved {savings[-1]:.0%} of the tokens.")
    return text


OWN_COLOUR = "#d4720f"  # orange, at least 3:1 against both the light and the dark background


def chart(rows: list[CompressionRow], own: tuple[int, float] | None = None) -> go.Figure:
    char = next(r for r in rows if r.tokenizer == "char")
    bpe = [r for r in rows if r.tokenizer == "bpe"]
    fig = go.Figure(go.Scatter(
        x=[r.vocab_size for r in bpe], y=[r.chars_per_token for r in bpe], mode="lines+markers",
        name="byte-level BPE", marker=dict(size=9),
        customdata=[[r.requested_vocab_size, r.tokens] for r in bpe],
        hovertemplate="vocabulary %{x:,} (asked for %{customdata[0]:,})<br>%{y:.2f} characters per token<br>"
                      "%{customdata[1]:,} tokens<extra></extra>",
    ))
    fig.add_hline(y=char.chars_per_token, line_dash="dot", line_color="gray",
                  annotation_text=f"character tokenizer ({char.vocab_size:,} symbols): 1 character per token",
                  annotation_position="bottom right")
    if own is not None:
        fig.add_trace(go.Scatter(x=[own[0]], y=[own[1]], mode="markers", name="your tokenizer",
                                 marker=dict(size=16, symbol="star", color=OWN_COLOUR),
                                 hovertemplate="your tokenizer: %{x:,} tokens, %{y:.2f} characters per token "
                                               "(on your whole corpus)<extra></extra>"))
    sizes = sorted({r.vocab_size for r in bpe})  # as trained: a short text may stop below the size asked for
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=10, b=40),
                      legend=dict(orientation="h", y=1.02, x=0, yanchor="bottom"),
                      xaxis=dict(type="log", title="vocabulary size (log scale)", tickvals=sizes,
                                 ticktext=[f"{s:,}" for s in sizes]),
                      yaxis=dict(title="characters per token", rangemode="tozero"))
    return fig


def table_rows(rows: list[CompressionRow]) -> list[dict[str, object]]:
    char = next(r for r in rows if r.tokenizer == "char")
    return [{
        "tokenizer": "characters" if r.tokenizer == "char" else "BPE",
        "vocabulary": r.vocab_size,
        "sequence length (tokens)": r.tokens,
        "characters per token": r.chars_per_token,
        "bytes per token": r.bytes_per_token,
        "shorter than characters by": round(1 - r.tokens / max(char.tokens, 1), 2),
    } for r in rows]


TABLE_COLUMNS = {
    "vocabulary": st.column_config.NumberColumn(format="localized"),
    "sequence length (tokens)": st.column_config.NumberColumn(
        format="localized", help="how many tokens the text becomes: what a model has to read"),
    "characters per token": st.column_config.NumberColumn(format="%.2f"),
    "bytes per token": st.column_config.NumberColumn(format="%.2f", help="UTF-8 bytes per token"),
    "shorter than characters by": st.column_config.NumberColumn(format="percent"),
}


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.tokenization:compression_table",)


def render(params: VocabSweepParams, key: str) -> None:
    me = session.learner()
    corpus = learner_tokenizer.corpus_text(me.id)
    excerpt = corpus.text[:MAX_CHARS]
    if len(excerpt) < 100:
        st.info("Your corpus is too short to compare vocabularies. Pick a longer one in the previous lesson.")
        return
    excerpt_hash = corpus.hash if len(excerpt) == len(corpus.text) else content_hash(excerpt)
    rows = _table(excerpt_hash, tuple(params.vocab_sizes), excerpt)
    info = learner_tokenizer.bpe_info(me.id)
    own = (int(info["vocab_size"]), float(info["chars_per_token"])) if info else None
    st.plotly_chart(chart(rows, own), key=f"{key}-chart", config={"displayModeBar": False})
    st.markdown(interpretation(rows))
    short = [r for r in rows if r.requested_vocab_size and r.vocab_size < r.requested_vocab_size]
    if short:
        st.caption(f"The text ran out of pairs to merge before {short[0].requested_vocab_size:,} tokens "
                   f"(it stopped at {short[0].vocab_size:,}): a short or repetitive text cannot fill a big vocabulary.")
    st.dataframe(table_rows(rows), hide_index=True, key=f"{key}-table", column_config=TABLE_COLUMNS)
    scope = "your whole corpus" if len(excerpt) == len(corpus.text) else f"the first {len(excerpt):,} characters of your corpus"
    st.caption(f"Each BPE was trained and measured on {scope}. The sequence length is what a model would have to "
               "read: fewer tokens per text means more text fits in its context window, at the price of a bigger "
               "embedding table and rarer tokens to learn.")
