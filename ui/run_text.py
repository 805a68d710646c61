"""Which text a checkpoint was trained on, for the widgets that measure or batch it (checkpoint_anatomy's int8
loss, output_gradient's training batch): one rule, so every widget names the same text for the same run."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import paths
from engine.load import checkpoint
from engine.transform.tokenization import CharTokenizer, tokenizer_from_dict
from ui import learner_corpus


@st.cache_data(max_entries=8, show_spinner=False)
def _characters(run_dir: str, stamp: float) -> set[str] | None:
    """The checkpoint's character vocabulary (None for a BPE): read once per file version, not on every rerun."""
    tok = tokenizer_from_dict(checkpoint.read_checkpoint(run_dir)["tokenizer"])
    return set(tok.chars) if isinstance(tok, CharTokenizer) else None


def _stamp(run_dir: str) -> float:
    try:
        return (Path(run_dir) / checkpoint.CKPT).stat().st_mtime
    except OSError:
        return 0.0


def trained_text(learner_id: int, run_dir: str, own: bool) -> tuple[str, str, str] | None:
    """(text id, text, how to name it): the corpus the checkpoint in `run_dir` trained on, or None when no text this
    course knows can be read by its tokenizer.

    The reference model and lesson 7's run train on Tiny Shakespeare; a run on the learner's own corpus (lesson
    4's, or lesson 7's when they chose theirs) is recognised by its tokenizer: a BPE, or a character vocabulary
    that is not Tiny Shakespeare's. `own`: the learner trained it (the reference model is always Shakespeare's)."""
    shakespeare = paths.DEFAULT_CORPUS.read_text(encoding="utf-8")
    named = ("tinyshakespeare", shakespeare, "Tiny Shakespeare")
    if not own:
        return named
    chars = _characters(run_dir, _stamp(run_dir))
    if chars == set(shakespeare):
        return named
    info = learner_corpus.chosen(learner_id)
    text = learner_corpus.training_text(learner_id)
    if chars is None or set(text) <= chars:
        return f"learner:{learner_id}:{learner_corpus.version(info)}", text, f"your corpus ({info.title})"
    return named if set(shakespeare) <= chars else None
