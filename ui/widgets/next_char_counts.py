"""'Labels come from the text itself': type a context, see which characters follow it in real text and how often."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import NextCharCountsParams
from engine.extract.bundled import entry
from engine.transform.next_token import FollowingCounts, following_counts
from ui import learner_corpus
from ui.text import escape_md


@st.cache_data(show_spinner=False, max_entries=256)
def _counts(text: str, context: str, top_k: int) -> FollowingCounts:
    return following_counts(text, context, top_k)


def chart(result: FollowingCounts) -> go.Figure:
    labels = [r.label for r in result.rows]
    fig = go.Figure(go.Bar(
        x=[r.count for r in result.rows][::-1], y=labels[::-1], orientation="h",
        text=[f"{r.share:.0%}" for r in result.rows][::-1], textposition="outside",
        hovertemplate="next = %{y}<br>%{x} times<extra></extra>",
    ))
    fig.update_layout(height=max(260, 26 * len(labels) + 80), margin=dict(l=10, r=40, t=10, b=40),
                      xaxis_title="times this character came next",
                      yaxis=dict(type="category", title="next character"))
    return fig


def chart_text(result: FollowingCounts) -> str:
    """The bar chart in words, for a screen reader and anyone who cannot see the bars: every bar's character,
    count and share, most frequent first.

    >>> chart_text(following_counts("tha the thi the", "th"))
    'Chart as text: e 2 times (50%), a 1 time (25%), i 1 time (25%).'
    """
    bars = ", ".join(f"{escape_md(r.label)} {r.count:,} time{'' if r.count == 1 else 's'} ({r.share:.0%})"
                     for r in result.rows)
    return f"Chart as text: {bars}."


CONTEXTS_BEFORE_NOTES = 3  # the card suggests three contexts: its notes discuss them, so they wait until then


def contexts_tried(key: str, context: str) -> int:
    """Count the distinct contexts the learner has looked at on this card (this session)."""
    tried = st.session_state.setdefault(f"{key}-tried", set())
    tried.add(context)
    return len(tried)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.next_token:following_counts",)


def render(params: NextCharCountsParams, key: str) -> bool:
    """True once the learner has looked at three contexts: the card's notes, which answer the questions it asks
    about them, show only then."""
    corpus_title = entry(params.corpus).title  # any corpus of data/corpora.yaml (course.widgets checked the id)
    text = learner_corpus.bundled_text(params.corpus)
    if params.allow_own_text:
        source = st.segmented_control("Text to learn from", [corpus_title, "My own text"], default=corpus_title,
                                      key=f"{key}-source", required=True)
        if source == "My own text":
            text = st.text_area("Paste or type any text", key=f"{key}-own", height=120,
                                placeholder="Paste a paragraph or two; the more text, the better the counts.")
    context = st.text_input("Context: the text so far", value=params.context, key=f"{key}-context", max_chars=40,
                            help="Spaces count. Try 'th', 'the k', 'ROMEO', or a single letter.")
    if not context:
        st.info("Type a few characters of context.")
        return False
    if not text:
        st.info("Type or paste some text above first.")
        return False
    tried = contexts_tried(key, context)
    result = _counts(text, context, params.top_k)
    if result.occurrences == 0:
        st.warning(f"“{escape_md(context)}” never appears in this text, so it offers no examples to learn from. "
                   "That is exactly why models need lots of varied text.")
        return tried >= CONTEXTS_BEFORE_NOTES
    shown = escape_md(context.replace("\n", "⏎"))
    st.markdown(f"**“{shown}”** appears **{result.occurrences:,}** times, followed by **{result.distinct}** different "
                f"characters. Each occurrence is one free training example: context in, next character as the label.")
    st.plotly_chart(chart(result), key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(chart_text(result))
    if result.other:
        st.caption(f"Other characters: {result.other:,} more occurrences.")
    if tried < CONTEXTS_BEFORE_NOTES:
        st.caption(f"Contexts looked at: {tried} of {CONTEXTS_BEFORE_NOTES}. Notes on what to look for appear below "
                   "once you have tried three.")
    return tried >= CONTEXTS_BEFORE_NOTES
