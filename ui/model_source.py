"""Which trained model a "look inside" widget shows: the learner's own lesson-7 run, or the course's reference model.

Every view of the inside of a model (the embedding map, attention, next-token probabilities) is of a real model
from the engine. The learner's own run is the one they care about, so it comes first once it has ended and saved a
timeline; until then (or when they want to compare) the reference model that ships in `data/reference/`
(engine.load.reference: the lesson preset trained by this engine, with the command that made it) is shown at once.
Both are plain run folders, so every engine function takes either.

Loaded models are cached per run folder and file time (`st.cache_resource`): they are read-only for the pages,
and a rerun or a second learner looking at the same run never reloads the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer
from ui import run_view

OWN_RUN_KEY = "main"  # the learner's lesson-7 run (ui/widgets/train_run.py)


@dataclass(frozen=True)
class ModelSource:
    """A run folder to look inside, and how to name it on screen."""

    run_dir: str
    label: str  # "Your run from lesson 7 (712 steps)" / "The course's reference model (750 steps)"
    own: bool  # the learner trained it

    @property
    def final_step(self) -> int:
        timeline = checkpoint.list_timeline(self.run_dir)
        return timeline[-1]["step"] if timeline else 0


def _steps(run_dir: str | Path) -> int | None:
    timeline = checkpoint.list_timeline(run_dir)
    return timeline[-1]["step"] if timeline else None


def sources(learner_id: int) -> list[ModelSource]:
    """The models this learner can look inside, their own first: their lesson-7 run once it has ended with a
    timeline, and always the reference model."""
    out = []
    run = run_view.load(learner_id, OWN_RUN_KEY)
    if run is not None and not run.active and (steps := _steps(run.run_dir)) is not None:
        out.append(ModelSource(run.run_dir, f"Your run from lesson 7 ({steps:,} steps)", own=True))
    steps = _steps(REFERENCE_DIR)
    out.append(ModelSource(str(REFERENCE_DIR), f"The course's reference model ({steps or 0:,} steps)", own=False))
    return out


def _stamp(run_dir: str) -> float:
    index = Path(run_dir) / checkpoint.TIMELINE / checkpoint.TIMELINE_INDEX
    try:
        return index.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading the model...", max_entries=16)
def _load(run_dir: str, step: int, stamp: float) -> tuple[GPT, Tokenizer]:
    return checkpoint.load_timeline_model(run_dir, step)


def load_model(source: ModelSource, step: int | None = None) -> tuple[GPT, Tokenizer]:
    """The model as it was at `step` of its timeline (default: its final step), and its tokenizer. Shared between
    sessions: treat it as read-only (the engine's show-me functions do)."""
    step = source.final_step if step is None else step
    return _load(source.run_dir, step, _stamp(source.run_dir))


def pick(learner_id: int, key: str) -> ModelSource:
    """A choice between the learner's run and the reference model when both exist (a radio keyed `key`), else the
    reference model with a line saying how to see their own."""
    options = sources(learner_id)
    if len(options) == 1:
        st.caption(f"Showing **{options[0].label.lower()}**: a real run of this course's engine. Train your own "
                   "in lesson 7 and it appears here.")
        return options[0]
    labels = [s.label for s in options]
    chosen = st.radio("Model to look inside", labels, key=key, horizontal=True)
    return options[labels.index(chosen)]
