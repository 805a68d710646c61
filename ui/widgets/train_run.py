"""Train a real GPT: a few safe knobs, Start/Stop, and a live view that polls the background run every second.

The run lives in the engine's run manager (a training process of its own), never in this script: a rerun or a page
switch does not restart or block it. The live part is a fragment (`st.fragment(run_every=...)`), so only the
numbers and the chart redraw each second while the rest of the page, knobs included, stays put. Each poll is also
the run's heartbeat; a run nobody watches for five minutes stops itself and saves. The live view is kept small on
purpose: the browser drawing it shares the machine with the training (docs/architecture.md); the drawing lives in
`ui/run_panel.py`, shared with every widget that starts a run.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
import torch

from course.widgets import TrainRunParams
from engine.train.config import PRESETS, TrainConfig
from engine.transform.tokenization import Tokenizer
from ui import learner_corpus, run_panel, run_view, session
from ui.run_panel import device_sentence, show_run, training_panel
from ui.run_view import RunView

WIDTHS = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
DIVERGE_LR = 5.0  # far above anything sane for Adam: the loss explodes within a few dozen steps


@st.cache_data(show_spinner=False, max_entries=4)
def _vocab_size(corpus: str) -> int:
    return len(set(learner_corpus.bundled_text(corpus)))


def presets_available() -> list[str]:
    names = ["tiny", "lesson"]
    if torch.cuda.is_available():
        names.append("gpu")
    return names


def build_config(params: TrainRunParams, preset: str, n_layer: int, n_embd: int, lr: float, budget: int) -> TrainConfig:
    """The preset with the learner's knobs applied. Muon's rate moves in proportion to the Adam rate they chose."""
    base = PRESETS[preset]
    n_head = base.model.n_head if n_embd % base.model.n_head == 0 else 1
    # 16 evaluations in all however short the run: the validation curve is what the lesson is about, worth the few
    # seconds it takes (docs/training-notes.md), and a 10 s run still draws a curve, not three points. A timed
    # preset counts them in seconds (every budget / 16 s, or its own eval_every_s if closer: 3.75 s of a 60 s run);
    # one counted in steps evaluates at least every 50 steps.
    cfg = base.with_changes(n_layer=n_layer, n_embd=n_embd, n_head=n_head, lr=lr, muon_lr=base.muon_lr * lr / base.lr,
                            eval_interval=min(base.eval_interval, 50), eval_points=16)
    if base.max_steps is None:  # time-bounded presets take the learner's budget
        cfg = replace(cfg, time_budget=float(budget))
    return cfg


def diverge_config(preset: str) -> TrainConfig:
    """A run with a learning rate so high the loss blows up: plain AdamW, no clipping to rescue it."""
    base = PRESETS[preset]
    return replace(base, optimizer="adamw", lr=DIVERGE_LR, grad_clip=0.0, warmup_steps=1,
                   max_steps=300, time_budget=None, eval_interval=10, sample_interval=50)


# ------------------------------------------------------------------ the widget


def _training_data(params: TrainRunParams, learner_id: int) -> tuple[str, Tokenizer | None, str]:
    """(text, tokenizer, a sentence saying what they are). Tokenizer None = characters of the text."""
    if params.use_learner_corpus:
        info = learner_corpus.chosen(learner_id)
        text, what = learner_corpus.training_text(learner_id), f"your corpus ({info.title}, cleaned)"
    else:
        text, what = learner_corpus.bundled_text(params.corpus), "Tiny Shakespeare" if params.corpus == "tinyshakespeare" else params.corpus
    if params.tokenizer == "learner_bpe":
        from ui.learner_tokenizer import learner_bpe

        tokenizer = learner_bpe(learner_id)
        return text, tokenizer, f"{what}, tokenized with your BPE"
    return text, None, f"{what}, one token per character"


def _start(params: TrainRunParams, key: str, run_key: str, config: TrainConfig, label: str) -> None:
    me = session.learner()
    text, tokenizer, _ = _training_data(params, me.id)
    run_view.start(me.id, run_key, config, text, label=f"{me.name} {label}", tokenizer=tokenizer)


def _stop(run: RunView) -> None:
    run_view.stop(run, session.learner().id)


def _resume_help(run: RunView) -> str:
    budget = run_view.resume_config(run).time_budget
    rest = f", for the {budget:.0f} s its time budget has left" if budget is not None else ""
    return f"Continue this run from its checkpoint at step {run.checkpoint_step:,}{rest}."


def _resume(params: TrainRunParams, run_key: str) -> None:
    """Continue the learner's run from its checkpoint, under the same run key. The run is looked up again here,
    not passed in: a button's arguments are those of the script run that drew it, which may be stale."""
    me = session.learner()
    run = run_view.load(me.id, run_key)
    if run is not None and run.resumable:
        text, _, _ = _training_data(params, me.id)
        run_view.resume(me.id, run, text)


def knob_start(params: TrainRunParams, base: TrainConfig, run: RunView | None) -> tuple[int, int, float, int]:
    """Where the knobs start (layers, width, learning rate, seconds): at the settings of the learner's run on this
    card when there is one, so a learner who comes back sees the run's own settings beside it (not the preset's
    60 s beside a run that trained 10 s); else at the preset's.

    >>> knob_start(TrainRunParams(), PRESETS["lesson"], None)
    (3, 128, 0.003, 60)
    """
    budget = params.time_budget
    if run is not None and run.config:
        cfg = TrainConfig.from_dict(run.config)
        if (cfg.max_steps is None) == (base.max_steps is None):  # the same kind of run as the preset on screen
            if cfg.time_budget is not None:
                budget = int(min(params.max_time_budget, max(10, 5 * round(cfg.time_budget / 5))))
            return cfg.model.n_layer, cfg.model.n_embd, cfg.lr, budget
    return base.model.n_layer, base.model.n_embd, base.lr, budget


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.train.loop:train_step", "engine.train.evaluate:estimate_loss")


def render(params: TrainRunParams, key: str) -> bool:
    """Returns True once the learner has a run, so the card's `after` text (which discusses results) shows then."""
    me = session.learner()
    text, tokenizer, what = _training_data(params, me.id)
    if params.tokenizer == "learner_bpe" and tokenizer is None:
        st.info("This run uses **your own BPE tokenizer**: train one on this lesson's card **Try it: train your own BPE**, "
                "then come back.",
                icon=":material/token:")
        return False
    vocab = tokenizer.vocab_size if tokenizer is not None else _vocab_size(params.corpus)
    if params.use_learner_corpus and tokenizer is None:
        vocab = learner_corpus.training_vocab_size(me.id)
    run = run_view.load(me.id, params.run_key)
    busy = run is not None and run.active
    st.caption(f"Training text: {what} · vocabulary of {vocab:,} tokens.")

    presets = presets_available()
    preset = params.preset if params.preset in presets else "lesson"
    base = PRESETS[preset]
    with st.container(key=f"{key}-knobs"):
        if len(presets) > 1:
            labels = {"tiny": "Tiny (seconds, a toy)", "lesson": "Lesson (the real thing)", "gpu": "GPU (bigger)"}
            preset = st.segmented_control("Preset", presets, default=preset, format_func=labels.get,
                                          key=f"{key}-preset", required=True, disabled=busy)
            base = PRESETS[preset]
        left, right = st.columns(2)
        knobs = set(params.knobs)
        start_layers, start_width, start_lr, start_budget = knob_start(params, base, run)
        n_layer = left.slider("Layers", 1, params.max_layers, min(start_layers, params.max_layers), key=f"{key}-layers",
                              disabled=busy or "n_layer" not in knobs, help="How many transformer blocks are stacked.")
        widths = [w for w in WIDTHS if w <= params.max_width]
        width = min(widths, key=lambda w: abs(w - start_width))
        n_embd = right.select_slider("Width (embedding size)", widths, value=width, key=f"{key}-width",
                                     disabled=busy or "n_embd" not in knobs,
                                     help="How many numbers represent each token inside the model.")
        rates = sorted({params.min_learning_rate, params.max_learning_rate, base.lr,
                        *([start_lr] if params.min_learning_rate <= start_lr <= params.max_learning_rate else []),
                        *[r for r in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
                          if params.min_learning_rate <= r <= params.max_learning_rate]})
        lr = left.select_slider("Learning rate", rates, value=min(rates, key=lambda r: abs(r - start_lr)),
                                format_func=lambda r: f"{r:g}", key=f"{key}-lr",
                                disabled=busy or "learning_rate" not in knobs,
                                help="How big a step each update takes. Too small: slow. Too big: it blows up.")
        budget = params.time_budget
        if base.max_steps is None:
            budget = right.slider("Time budget (seconds)", 10, params.max_time_budget, start_budget, step=5,
                                  key=f"{key}-budget", disabled=busy or "time_budget" not in knobs,
                                  help="The schedule is planned to make the best model in exactly this time.")
        else:
            right.caption(f"The tiny preset runs a fixed {base.max_steps} steps.")
    config = build_config(params, preset, n_layer, n_embd, lr, budget)

    c1, c2, c3 = st.columns([1, 1, 2])
    c1.button("Start training", key=f"{key}-start", type="primary", icon=":material/play_arrow:", disabled=busy,
              on_click=_start, args=(params, key, params.run_key, config, "lesson run"), width="stretch")
    if run is not None and run.resumable:  # stopped, timed out or interrupted, with a checkpoint
        c2.button("Resume", key=f"{key}-resume", icon=":material/play_circle:", on_click=_resume,
                  args=(params, params.run_key), width="stretch",
                  help=_resume_help(run))
    else:
        c2.button("Stop", key=f"{key}-stop", icon=":material/stop:", disabled=not busy, on_click=_stop, args=(run,),
                  width="stretch")
    run_panel.queue_full_notice(params.run_key, "diverge")
    demo = run_view.load(me.id, "diverge") if params.show_diverge_button else None
    if params.show_diverge_button:
        # Not while a run trains: the demo would only wait in the queue behind it (one run at a time on a CPU).
        c3.button(f"Too high learning rate ({DIVERGE_LR:g}): watch it diverge", key=f"{key}-diverge",
                  icon=":material/local_fire_department:", on_click=_start,
                  disabled=busy or (demo is not None and demo.active),
                  args=(params, key, "diverge", diverge_config(preset), "too-high learning rate"), width="stretch")

    if run is None:
        st.caption(f"{device_sentence()}. Nothing trained yet: press Start and watch the loss.")
    else:
        show_run(run, training_panel(vocab), f"{key}-{params.run_key}")

    if demo is not None:
        with st.expander("The too-high learning rate run", expanded=True, icon=":material/local_fire_department:"):
            show_run(demo, training_panel(vocab), f"{key}-diverge")
    return run is not None
