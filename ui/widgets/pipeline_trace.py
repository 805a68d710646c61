"""Lesson 1: follow one line of text through the whole pipeline (engine.pipeline_trace draws nothing; this does)."""

from __future__ import annotations

import streamlit as st

from course.widgets import PipelineTraceParams
from engine.cost.flops import count_parameters
from engine.extract.bundled import entry
from engine.number_format import file_size
from engine.pipeline_trace import PipelineTrace, trace_line
from engine.retrieve.chunking import Document, chunk_documents
from engine.retrieve.keyword_search import KeywordIndex
from engine.train.config import PRESETS
from engine.transform.tokenization import CharTokenizer
from ui import learner_corpus
from ui.text import escape_md
from ui.token_chips import chips_markdown, visible


@st.cache_resource(show_spinner="Reading the corpus and indexing its passages...", max_entries=4)
def _corpus(corpus: str) -> tuple[str, CharTokenizer, KeywordIndex, int]:
    """(text, its character tokenizer, a keyword index over its passages, the lesson model's parameter count)."""
    text = learner_corpus.bundled_text(corpus)
    tokenizer = CharTokenizer.from_text(text)
    index = KeywordIndex(chunk_documents([Document(corpus, entry(corpus).title, text)]))
    parameters = count_parameters(PRESETS["lesson"].model_config(tokenizer.vocab_size)).total
    return text, tokenizer, index, parameters


def _stage(number: int, name: str, what: str) -> None:
    st.markdown(f":blue-badge[**{number} · {name}**] {what}")


def draw(trace: PipelineTrace, corpus_title: str) -> None:
    ex, tr, ld, rt = trace.extract, trace.transform, trace.load, trace.retrieve
    with st.container(border=True):
        _stage(1, "Extract", "where the text comes from")
        if ex.found_at is not None:
            where = ex.found_at / ex.corpus_chars
            times = f", {ex.times_found:,} times in all" if ex.times_found > 1 else ""
            st.markdown(f"Found in {escape_md(corpus_title)} at character **{ex.found_at:,}** of "
                        f"**{ex.corpus_chars:,}** ({where:.0%} of the way through{times}). This line is part of "
                        "the text the model will learn from.")
        else:
            st.markdown(f"Not in {escape_md(corpus_title)} ({ex.corpus_chars:,} characters): a model trained on "
                        "this corpus never sees this exact line.")
    with st.container(border=True):
        _stage(2, "Transform", "text becomes numbers, and numbers become practice questions")
        st.markdown(chips_markdown(list(trace.line)))
        st.markdown("As token ids: `" + " ".join(str(i) for i in tr.ids[:40]) + (" …" if len(tr.ids) > 40 else "")
                    + f"` (each a row of a {tr.vocab_size}-character vocabulary)")
        if tr.unknown:
            st.warning("Not in the vocabulary, so the model cannot read them: "
                       + ", ".join(f"`{visible(ch)}`" for ch in tr.unknown), icon=":material/block:")
        rows = [{"the model sees": visible(context), "and must guess": visible(nxt)} for context, nxt in tr.examples]
        st.table(rows)  # six rows: a static table (the data grid loads a canvas library just for these)
        st.caption(f"This one line makes **{tr.n_examples}** practice questions, one per character after the "
                   "first. Training is guessing them, checking and adjusting, over and over.")
    with st.container(border=True):
        _stage(3, "Load", "what is saved is the model, not the text")
        st.markdown(f"The model you will train in lesson 7 has **{ld.parameters:,}** numbers. Saved as 32-bit "
                    f"floats they fill **{file_size(ld.weight_bytes)}**, whichever lines it learned from: the "
                    f"file holds no copy of this line, or of the {file_size(ld.corpus_bytes)} of text.")
    with st.container(border=True):
        _stage(4, "Retrieve", "at question time, fetch passages that match")
        if rt.passages:
            st.markdown("The passages of the corpus that share the most (and the rarest) words with your line. "
                        "This search matches spelling, not meaning; lesson 10 compares it with a search by meaning.")
            for chunk, score, shared in rt.passages:
                with st.container(border=True):  # plain text in a box: a code block is syntax-highlighted in the browser
                    st.caption(f"match score {score:.1f} · shares: " + ", ".join(f"`{w}`" for w in shared))
                    st.text(chunk.text.strip())
        else:
            st.markdown("No passage shares a word with your line (very common words such as *the* are ignored).")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.pipeline_trace:trace_line",)


def render(params: PipelineTraceParams, key: str) -> None:
    text, tokenizer, index, parameters = _corpus(params.corpus)
    line = st.text_input("A line of text to follow", value=params.line, key=f"{key}-line", max_chars=120,
                         help="Try a line from a play, your own sentence, or one with an emoji.")
    if not line:
        st.info("Type a line to follow it through the pipeline.")
        return
    draw(trace_line(line, text, tokenizer, parameters, index), entry(params.corpus).title)
