"""Lesson 5's nearest neighbours: pick a token and see the tokens whose rows point most nearly the same way
(cosine similarity over all of the table's numbers, `engine.look_inside.embeddings.run_neighbours`), at the start of training
and at a chosen timeline step, side by side."""

from __future__ import annotations

import streamlit as st

from course.widgets import EmbeddingNeighboursParams
from engine.load.checkpoint import list_timeline
from engine.look_inside.embeddings import Neighbour, run_neighbours, run_table
from engine.look_inside.groups import GROUPS, token_group, token_label
from ui import model_source, session
from ui.text import escape_md

GROUP_LABELS = {g.name: g.label for g in GROUPS}
COLUMNS = {
    "token": st.column_config.TextColumn(help="␣ is a space, ⏎ a newline"),
    "cosine similarity": st.column_config.NumberColumn(
        format="%.2f", help="1 = pointing the same way, 0 = unrelated (at right angles), −1 = opposite"),
}


def rows(neighbours: list[Neighbour]) -> list[dict[str, object]]:
    return [{"rank": i + 1, "token": n.label, "group": GROUP_LABELS.get(n.group, n.group),
             "cosine similarity": round(n.similarity, 4)} for i, n in enumerate(neighbours)]


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.embeddings:nearest_neighbours",)


def render(params: EmbeddingNeighboursParams, key: str) -> None:
    source = model_source.pick(session.learner().id, key=f"{key}-source")
    final = source.final_step
    _, texts = run_table(source.run_dir, final)
    labels = [token_label(t) for t in texts]
    default = labels.index(token_label(params.token)) if token_label(params.token) in labels else 0
    left, right = st.columns(2)
    token_id = left.selectbox("Token", range(len(labels)), index=default, key=f"{key}-token",
                              format_func=lambda i: f"{labels[i]}  ({GROUP_LABELS.get(token_group(texts[i]), '')})")
    steps = [int(e["step"]) for e in list_timeline(source.run_dir)]
    step = right.select_slider("Training step to compare with step 0", options=steps, value=steps[-1],
                               key=f"{key}-step", format_func=lambda s: f"{s:,}")
    before, after = st.columns(2)
    for col, at, title in ((before, steps[0], "random start"), (after, step, "after training" if step == final
                                                                  else "during training")):
        col.markdown(f"**Step {at:,}** ({title}): nearest to **{escape_md(labels[token_id])}**")
        col.dataframe(rows(run_neighbours(source.run_dir, at, token_id, params.k)), hide_index=True,
                      key=f"{key}-table-{'before' if col is before else 'after'}", column_config=COLUMNS)
    st.caption("Cosine similarity compares the direction of two rows using all of their numbers at once: 1 means "
               "they point the same way, 0 that they have nothing in common, −1 that they point opposite ways.")

