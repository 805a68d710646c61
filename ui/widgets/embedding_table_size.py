"""Lesson 5's table size: how many numbers the shown model's embedding table holds, from its own config
(`engine.look_inside.embeddings.run_table_size`: V rows x C numbers, bytes at fp32, share of all parameters), and the same
for a vocabulary size the learner types (`engine.look_inside.embeddings.table_size`, the model otherwise unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from course.widgets import EmbeddingTableSizeParams
from engine.load import checkpoint
from engine.look_inside.embeddings import TableSize, run_table_size, table_size
from ui import model_source, session


def kilobytes(n: int) -> str:
    """A byte count in kB or MB (1,000-based), as the tiles show it.

    >>> kilobytes(33_280), kilobytes(154_389_504)
    ('33.3 kB', '154.4 MB')
    """
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def tiles(size: TableSize) -> None:
    cols = st.columns(5)
    cols[0].metric("Rows (V)", f"{size.vocab_size:,}", help="one row per token in the vocabulary")
    cols[1].metric("Row length (C)", f"{size.n_embd:,}", help="numbers per token")
    cols[2].metric("Numbers (V × C)", f"{size.numbers:,}", help="every number in the table")
    cols[3].metric("Memory (fp32)", kilobytes(size.bytes_fp32), help=f"{size.bytes_fp32:,} bytes at 4 bytes a number")
    cols[4].metric("Share of model", f"{size.share:.1%}", help=f"of all {size.model_params:,} parameters")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.embeddings:table_size",)


def render(params: EmbeddingTableSizeParams, key: str) -> None:
    source = model_source.pick(session.learner().id, key=f"{key}-source")
    size = run_table_size(source.run_dir)
    tiles(size)
    st.caption(f"The whole model has {size.model_params:,} parameters; the table is {size.numbers:,} of them.")
    if not params.what_if:
        return
    vocab = st.number_input("What if the vocabulary had this many tokens?", min_value=2, max_value=262_144,
                            value=params.what_if_vocab, step=256, key=f"{key}-what-if",
                            help="Same model otherwise: the same C, the same layers.")
    model = json.loads((Path(source.run_dir) / checkpoint.CONFIG).read_text())["model"]
    other = table_size({**model, "vocab_size": int(vocab)})
    st.markdown(f"With **{other.vocab_size:,}** tokens: **{other.numbers:,}** numbers "
                f"({kilobytes(other.bytes_fp32)}), **{other.share:.1%}** of a model of {other.model_params:,} "
                "parameters.")
