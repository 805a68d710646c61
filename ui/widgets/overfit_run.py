"""Lesson 8's overfitting run: the lesson preset trained on a small slice of a corpus (its first
`slice_chars` characters) and evaluated often, so the training loss keeps falling while the validation loss turns up.

It reuses the lesson-7 machinery end to end: `ui.run_view.start` under its own run key ("overfit"), drawn by
`ui.run_panel.show_run` (live while it trains, once it has ended). The defaults (`course.widgets.OverfitRunParams`)
are sized so the turn comes early in the run on a small CPU (docs/training-notes.md, "Figures behind settings in
the code").
"""

from __future__ import annotations

import math
from dataclasses import replace

import streamlit as st

from course.widgets import OverfitRunParams
from engine.extract.bundled import entry
from engine.train.config import PRESETS, TrainConfig
from ui import learner_corpus, run_panel, run_view, session


def overfit_config(params: OverfitRunParams, stop_early: bool = False) -> TrainConfig:
    """The preset (lesson: timed), evaluated every `eval_interval` steps and sampled every 100: counted in steps
    although the run is timed, because the turn comes after so many passes over the slice whatever the device's
    speed, and the card and the early-stopping rule talk in steps. With `stop_early`, the engine's early-stopping
    rule (engine.train.schedule.EarlyStopping) ends the run once the validation loss has not improved for
    `early_stop_patience` evaluations.

    >>> cfg = overfit_config(OverfitRunParams())
    >>> cfg.time_budget, cfg.eval_interval, cfg.eval_every_s, cfg.max_steps, cfg.early_stop_patience
    (40.0, 25, None, None, None)
    >>> overfit_config(OverfitRunParams(), stop_early=True).early_stop_patience
    4
    """
    base = PRESETS[params.preset]
    cfg = replace(base, eval_interval=params.eval_interval, sample_interval=100,
                  eval_every_s=None, sample_every_s=None,  # in steps: see above
                  early_stop_patience=params.early_stop_patience if stop_early else None)
    return replace(cfg, time_budget=float(params.time_budget)) if base.max_steps is None else cfg


def slice_text(params: OverfitRunParams) -> str:
    return learner_corpus.bundled_text(params.corpus)[: params.slice_chars]


def best_checkpoint(evals: list[tuple[int, float]]) -> tuple[int, float] | None:
    """The evaluation with the lowest validation loss: where early stopping would have kept the model.

    >>> best_checkpoint([(0, 4.1), (25, 2.6), (50, 2.3), (75, 2.5)])
    (50, 2.3)
    """
    finite = [(s, v) for s, v in evals if math.isfinite(v)]
    return min(finite, key=lambda e: (e[1], e[0])) if finite else None


def _start(params: OverfitRunParams, key: str) -> None:
    me = session.learner()
    stop_early = bool(st.session_state.get(f"{key}-stop-early"))
    run_view.start(me.id, params.run_key, overfit_config(params, stop_early), slice_text(params),
                   label=f"{me.name} overfitting run" + (" (early stopping)" if stop_early else ""))


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.train.schedule:EarlyStopping",)


def render(params: OverfitRunParams, key: str) -> bool:
    me = session.learner()
    text = slice_text(params)
    vocab = len(set(text))
    split = int(len(text) * 0.9)
    st.caption(f"Training text: the first **{len(text):,}** characters of {entry(params.corpus).title} "
               f"({split:,} to learn from, the last {len(text) - split:,} held back for validation) · "
               f"{params.preset} preset"
               + (f" · **{params.time_budget} s**" if PRESETS[params.preset].max_steps is None else "")
               + f" · validation every {params.eval_interval} steps.")
    run = run_view.load(me.id, params.run_key)
    busy = run is not None and run.active
    c1, c2 = st.columns([1, 3])
    c1.button("Start training", key=f"{key}-start", type="primary", icon=":material/play_arrow:",
              disabled=busy, on_click=_start, args=(params, key), width="stretch")
    c2.toggle(f"Stop early: the engine's rule ends the run once validation loss has not improved for "
              f"{params.early_stop_patience} evaluations", key=f"{key}-stop-early", disabled=busy,
              help="Try the run once without it to see the curves split, then once with it.")
    run_panel.queue_full_notice(params.run_key)
    if run is None:
        st.caption("Nothing trained yet: press Start and watch the two curves.")
        return False
    run_panel.show_run(run, run_panel.training_panel(vocab), f"{key}-{params.run_key}")
    if not run.active and (best := best_checkpoint(run.evals)) is not None and run.evals:
        last_step, last_val = run.evals[-1]
        st.markdown(f"Lowest validation loss: **{best[1]:.2f}** at step **{best[0]:,}**. At the end (step "
                    f"{last_step:,}) it was **{last_val:.2f}**. Early stopping would have kept the model from step "
                    f"{best[0]:,}.")
    return not run.active
