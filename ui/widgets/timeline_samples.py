"""Lesson 8: the text sample the shown run wrote at each snapshot of its timeline (`engine.load.checkpoint.list_timeline`),
side by side with the step and the validation loss at that moment: from gibberish to words."""

from __future__ import annotations

import math

import streamlit as st

from course.widgets import TimelineSamplesParams
from engine.load.checkpoint import list_timeline
from ui import model_source, session


def heading(entry: dict) -> str:
    """One snapshot's caption.

    >>> heading({"step": 250, "val_loss": 1.9134})
    'Step **250** · validation loss **1.91**'
    >>> heading({"step": 0})
    'Step **0** · validation loss –'
    """
    val = entry.get("val_loss")
    loss = f"**{val:.2f}**" if isinstance(val, (int, float)) and math.isfinite(val) else "–"
    return f"Step **{entry['step']:,}** · validation loss {loss}"


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.load.checkpoint:list_timeline",)


def render(params: TimelineSamplesParams, key: str) -> None:
    source = model_source.pick(session.learner().id, key=f"{key}-source")
    entries = [e for e in list_timeline(source.run_dir) if e.get("sample")]
    if not entries:
        st.info("This run saved no samples on its timeline.")
        return
    st.caption(f"{len(entries)} snapshots, each written from the same start (a newline) with the same random seed, "
               "so only the model changed between them.")
    for row in range(0, len(entries), params.columns):
        cols = st.columns(params.columns)
        for col, entry in zip(cols, entries[row:row + params.columns], strict=False):
            col.markdown(heading(entry))
            col.code(entry["sample"].strip("\n"), language=None, wrap_lines=True)
