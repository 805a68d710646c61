"""Lesson 7's Load moment: the run the learner just trained is now a file, ckpt.pt, and here is what is in it.

Drawn from `engine.load.weights.anatomy` (the file taken apart entry by entry). Lesson 10 opens the same file further
(other precisions, safetensors, int8); here the point is only that training ended in numbers on disk, and that
their size follows from the parameter count.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from course.widgets import CheckpointFileParams
from engine.load import checkpoint
from engine.load.weights import CheckpointAnatomy, anatomy
from engine.number_format import file_size
from ui import run_view, session


@st.cache_data(max_entries=8, show_spinner=False)
def _anatomy(run_dir: str, stamp: float) -> CheckpointAnatomy:
    """Reading the file is torch.load of a few MB: once per saved version of it (`stamp` = its mtime)."""
    return anatomy(run_dir)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.load.weights:anatomy", "engine.load.weights:predicted_bytes")


def render(params: CheckpointFileParams, key: str) -> bool:
    me = session.learner()
    run = run_view.load(me.id, params.run_key)
    path = Path(run.run_dir) / checkpoint.CKPT if run is not None else None
    if run is None or not path.exists():
        st.info("Train your model on the card **Train your model** first: its weights are saved as a file as it "
                "trains, and this card opens that file.", icon=":material/save:")
        return False
    a = _anatomy(run.run_dir, path.stat().st_mtime)
    st.markdown(f"Your run's folder holds **`{path.name}`**, **{file_size(a.file_bytes)}**"
                + (" (saved while it trains; it grows no bigger, it is rewritten)." if run.active else "."))
    c1, c2, c3 = st.columns(3)
    c1.metric("Parameters", f"{a.parameters:,}", help="Every number the model learned, counted once.")
    c2.metric(f"The weights ({a.weights_dtype})", file_size(a.weights_bytes),
              help=f"{a.parameters:,} parameters × {a.weights_bytes / max(a.parameters, 1):g} bytes each: the "
                   "numbers themselves. The table's first row adds the names and shapes stored with them.")
    c3.metric("The whole file", file_size(a.file_bytes))
    st.dataframe([{"what": p.meaning, "entry": p.key, "size": file_size(p.bytes)} for p in a.parts if p.bytes > 0],
                 hide_index=True, width="stretch",
                 column_config={"what": st.column_config.TextColumn("What it is", width="large")})
    with st.expander(f"The {len(a.tensors)} weight tensors, by name and shape"):
        st.dataframe([{"name": t.name, "shape": " × ".join(map(str, t.shape)), "parameters": t.parameters,
                       "note": f"the same matrix as {t.tied_to}" if t.tied_to else ""} for t in a.tensors],
                     hide_index=True, width="stretch")
    return True
