"""The instructor's view of the class's training runs: lesson 7's leaderboard, each run's report card, and the queue.

The leaderboard ranks only runs trained under the lesson's fixed rules, so a better loss means a better choice of
model size and learning rate, not a longer budget or an easier text: the rules are the lesson 7 card's own (its
preset's batch and context, its default time budget, its corpus as bundled), and they are stated on the page. Runs
trained otherwise are listed below it with the reason they are not ranked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import streamlit as st

from course.widget_params import TrainRunParams
from engine.extract.corpus import content_hash
from engine.runs import run_source
from engine.runs.manager import get_manager
from engine.train.config import PRESETS
from ui import learner_corpus, run_view, session
from ui.tables import table_with_csv
from ui.text import escape_md

LESSON7 = "training-loop"


@dataclass(frozen=True)
class Rules:
    preset: str
    budget_s: int
    corpus: str
    batch_size: int
    block_size: int
    text_sha256: str

    def why_not(self, run: run_view.RunView) -> str | None:
        """Why this run cannot be ranked against the others, or None when it was trained by the rules."""
        cfg = run.config or {}  # the flat form (TrainConfig.to_dict)
        if run.status.value != "finished":
            return f"{run.status.value}, not finished"
        if cfg.get("time_budget") is None or float(cfg["time_budget"]) != float(self.budget_s):
            return f"a {cfg.get('time_budget') or 'step-counted'} s budget, not {self.budget_s} s"
        if cfg.get("batch_size") != self.batch_size or cfg.get("block_size") != self.block_size:
            return "another batch or context length than the lesson's"
        source = run_source.read(run.run_dir)
        if source is None or source.sha256 != self.text_sha256:
            return "another text than the lesson's"
        return None


@functools.cache
def _text_hash(corpus: str) -> str:
    return content_hash(learner_corpus.bundled_text(corpus))


def lesson_rules() -> tuple[Rules, str]:
    """The lesson 7 card's rules and the run key its runs are kept under."""
    lesson = session.course().entry(LESSON7).lesson
    card = next(c for c in lesson.cards if c.widget is not None and c.widget.name == "train_run")
    params = TrainRunParams.model_validate(card.widget.params)
    preset = PRESETS[params.preset]
    return Rules(params.preset, params.time_budget, params.corpus, preset.batch_size, preset.model.block_size,
                 _text_hash(params.corpus)), params.run_key


def render() -> None:
    st.title("The class's runs")
    rules, run_key = lesson_rules()
    st.caption(f"Lesson 7's runs, ranked by best validation loss. **The rules, the same for everyone:** the "
               f"`{rules.preset}` preset's batch ({rules.batch_size} sequences) and context ({rules.block_size} "
               f"characters), a {rules.budget_s} s time budget, and the bundled Tiny Shakespeare as it ships. Model "
               "size and learning rate are each learner's choice: that is what the ranking compares.")
    ranked, unranked = [], []
    for member in session.store().members():
        info = session.store().fact(member.id, f"{run_view.FACT_PREFIX}{run_key}")
        if not isinstance(info, dict) or "run_id" not in info:
            continue
        run = run_view._view(run_key, info, history=False)
        why = rules.why_not(run)
        (unranked if why else ranked).append((member, run, why))

    def best(run: run_view.RunView) -> float:
        losses = [m["val_loss"] for m in run.metrics if m.get("val_loss") is not None]
        final = (run.summary or {}).get("final_val_loss")
        return min([*losses, *([final] if final is not None else [])], default=float("inf"))

    ranked.sort(key=lambda t: best(t[1]))
    rows = [{"Rank": i + 1, "Learner": m.name, "Best validation loss": round(best(r), 3),
             "Layers": r.config.get("n_layer"), "Width": r.config.get("n_embd"),
             "Learning rate": r.config.get("lr"), "Steps": (r.summary or {}).get("steps")}
            for i, (m, r, _) in enumerate(ranked)]
    table_with_csv(rows, "lesson-7-leaderboard", "leaderboard")
    if unranked:
        st.subheader("Not ranked", anchor=False)
        st.dataframe([{"Learner": m.name, "Run": r.label, "Why": why} for m, r, why in unranked], hide_index=True,
                     width="stretch")

    runs = ranked + [(m, r, w) for m, r, w in unranked if r.status.value not in ("queued", "running")]
    if runs:
        st.subheader("A run's report card", anchor=False)
        choice = st.selectbox("Run", range(len(runs)), key="class-runs-card",
                              format_func=lambda i: f"{runs[i][0].name}: {runs[i][1].label or runs[i][1].run_id}")
        from ui.widgets import (
            report_card,  # the lesson 9 card, drawn for the instructor as the learner sees it
        )

        try:
            report_card.show_card(run_view.load(runs[choice][0].id, run_key), utilisation=0.0, key="class-runs-card",
                                  owner=None)
        except (OSError, ValueError, KeyError) as err:  # a folder cut short or written by an older course
            st.warning(f"This run's report card cannot be drawn from its folder: {err}")

    st.subheader("The queue", anchor=False)
    queue = [r for r in get_manager().list_runs() if r.status.value in ("queued", "running")]
    if not queue:
        st.caption("No run is training or waiting on this server.")
    else:
        st.dataframe([{"Status": r.status.value, "Place in line": r.queue_position or "", "Run": r.label,
                       "Starts in about (s)": round(r.starts_in_s) if r.starts_in_s is not None else ""}
                      for r in queue], hide_index=True, width="stretch")
    manager = get_manager()
    slots = manager.settings.slots
    st.caption(escape_md(f"{slots} run{'s train' if slots != 1 else ' trains'} at once on this server; each learner "
                         f"may have {manager.settings.running_per_learner} training and "
                         f"{manager.settings.waiting_per_learner} waiting."))
