"""Lesson 10's fine-tuning run: the learner's lesson-7 model (or the course's reference model) goes on learning from
a different corpus, and the page shows what that costs: the new text's loss falls while the loss on the text the
model learned first rises (forgetting), with the model's writing before and after from the same prompt.

A fine-tune is a new run of its own (engine.train.finetune): it starts from another run's checkpoint, keeps that model's
tokenizer and shape, and trains on the new text with a fresh optimizer at a lower peak learning rate. It goes
through `ui.run_view.start` under its own run key, so it is queued, trained in a worker process, listed in the
sidebar and found again after a restart like every learner run; it is drawn by the shared run panel (ui.run_panel),
which polls it and never trains or waits in a script run, with what a fine-tune shows differently (`panel`).

The source's tokenizer is fixed, so characters of the new text it has no token for are replaced before training
(`engine.train.finetune.fit_text`); the page says how many, and which, before the learner presses Start, and the run
reports the same counts afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from course.widgets import FinetuneRunParams
from engine.load import checkpoint
from engine.train import intervals
from engine.train.config import PRESETS, TrainConfig
from engine.train.finetune import finetune_config, fit_text
from engine.transform.tokenization import tokenizer_from_dict
from ui import run_panel, run_view, session
from ui.finetune_view import (
    ORIGINAL_CORPUS,
    Source,
    char_name,
    chart_spec,
    ckpt_stamp,
    corpus_title,
    draw_result,
    numbers_line,
    pick_source,
    start_stop_buttons,
    status_line,
)
from ui.run_view import RunView

# Seconds of training between evaluations of both corpora: about a dozen points for two curves in a 30 s run, on
# any device (counted in steps, a GPU's thousands of steps would evaluate hundreds of times).
EVAL_EVERY_S = 2.5
FINAL_EVAL_BATCHES = 24  # per corpus, at the end (see run_config)
SAMPLE_TOKENS = 160  # longer than a training run's samples: before and after are the point of this card
SAMPLE_EVERY_S = 5.0  # seconds between 'after' samples while it trains, not only at the end of a 30 s run
SHOWN_CHARS = 8  # missing characters named on screen, the most common first


@st.cache_data(show_spinner="Checking which characters the model can write...", max_entries=8)
def _fit_report(run_dir: str, stamp: float, corpus: str) -> dict[str, Any]:
    """What fitting `corpus` to the source's tokenizer replaces (engine.train.finetune.FittedText.report), plus the
    vocabulary size. Cached by folder and checkpoint time: reading the checkpoint and counting characters of a
    half-megabyte text is done once, not on every rerun."""
    from ui.learner_corpus import bundled_text

    tokenizer = tokenizer_from_dict(checkpoint.read_checkpoint(run_dir)["tokenizer"])
    fitted = fit_text(bundled_text(corpus), tokenizer)
    return {**fitted.report(), "unknown_all": dict(fitted.unknown), "vocab_size": tokenizer.vocab_size}


def run_config(params: FinetuneRunParams, source: Source) -> TrainConfig:
    """The fine-tune's config: the lesson preset with the source's own peak learning rates, scaled down by
    engine.train.finetune.finetune_config (0.3), for the card's time budget, measuring both corpora every
    EVAL_EVERY_S seconds of training. The model's shape comes from the checkpoint (engine.train.prepare). Tests replace this
    function to fine-tune with the tiny preset.

    The end-of-run evaluation measures both corpora, so it costs twice a plain run's, and the engine keeps time
    for it out of the budget (engine.train.evaluate's `final_seconds`, scaled up when the machine is busy).
    FINAL_EVAL_BATCHES (24 per corpus instead of 50) keeps that reserve from eating a 30 s run on a shared 2-core
    machine.

    >>> cfg = run_config(FinetuneRunParams(), Source("d", False, 750, {"lr": 3e-3, "muon_lr": 0.04}))
    >>> cfg.time_budget, cfg.max_steps, round(cfg.lr, 6), cfg.eval_every_s, cfg.sample_every_s, cfg.final_eval_batches
    (30.0, None, 0.0009, 2.5, 5.0, 24)
    """
    base = PRESETS["lesson"]
    lr = float(source.config.get("lr") or base.lr)
    muon_lr = float(source.config.get("muon_lr") or base.muon_lr)
    return finetune_config(replace(base, lr=lr, muon_lr=muon_lr), time_budget=float(params.time_budget),
                           max_steps=None, eval_every_s=EVAL_EVERY_S, sample_tokens=SAMPLE_TOKENS,
                           sample_every_s=SAMPLE_EVERY_S, final_eval_batches=FINAL_EVAL_BATCHES)


def eval_every_words(config: TrainConfig) -> str:
    """How often the run measures both corpora, as the card says it: in seconds of training for a timed run, else
    in steps (engine.train.intervals decides which the run counts in).

    >>> eval_every_words(run_config(FinetuneRunParams(), Source("d", False, 750, {})))
    'Every 2.5 s of training'
    >>> eval_every_words(TrainConfig(max_steps=60, time_budget=None, eval_interval=20))
    'Every 20 steps'
    """
    seconds = intervals.eval_seconds(config)
    return f"Every {seconds:g} s of training" if seconds is not None else f"Every {config.eval_interval:,} steps"


def next_sample_words(config: TrainConfig) -> str:
    """When the model writes its next 'after' sample, for the card before it has.

    >>> next_sample_words(run_config(FinetuneRunParams(), Source("d", False, 750, {})))
    'After: the model writes again 5 s into its training.'
    >>> next_sample_words(TrainConfig(max_steps=60, time_budget=None, sample_interval=20))
    'After: the model writes again at step 20.'
    """
    seconds = intervals.seconds(config.sample_every_s, config)
    if seconds is not None:
        return f"After: the model writes again {seconds:g} s into its training."
    if config.sample_interval:
        return f"After: the model writes again at step {config.sample_interval:,}."
    return "After: the model writes again when the run ends."


def replaced_sentence(report: dict[str, Any], title: str) -> str:
    """What fitting the new text to the model's vocabulary does, in words, from a FittedText.report().

    >>> replaced_sentence({"replaced_chars": 3, "total_chars": 6, "replaced_fraction": 0.5, "replacement": "?",
    ...                    "unknown_all": {"_": 2, "{": 1}}, "Code")
    'The model has no token for **3** of the **6** characters of Code (**50.0%**); each becomes `?`. The most common: `_` ×2, `{` ×1.'
    """
    if not report["replaced_chars"]:
        return f"Every character of {title} is in the model's vocabulary: nothing needs replacing."
    unknown = report.get("unknown_all") or report.get("unknown_chars") or {}
    shown = ", ".join(f"{char_name(ch)} ×{n:,}" for ch, n in list(unknown.items())[:SHOWN_CHARS])
    more = f", and {len(unknown) - SHOWN_CHARS} other characters" if len(unknown) > SHOWN_CHARS else ""
    return (f"The model has no token for **{report['replaced_chars']:,}** of the **{report['total_chars']:,}** "
            f"characters of {title} (**{100 * report['replaced_fraction']:.1f}%**); each becomes "
            f"{char_name(report['replacement'])}. The most common: {shown}{more}.")


# ------------------------------------------------------------------ the run on screen


def panel(params: FinetuneRunParams, vocab_size: int | None) -> run_panel.Panel:
    """The shared run panel (ui.run_panel) with what a fine-tune shows differently: two curves, the loss on each
    corpus, the characters its text lost, and its writing before and after."""
    new_title, original_title = corpus_title(params.corpus), corpus_title(ORIGINAL_CORPUS)

    def chart(run: RunView) -> tuple[dict, str] | None:
        if not (run.evals or run.evals_original):
            return None
        return (chart_spec(run, new_title, original_title, vocab_size),
                f"Validation loss on {new_title} and on {original_title}, step by step")

    return run_panel.Panel(
        numbers=lambda run: numbers_line(run, new_title, original_title),
        result=lambda run: draw_result(run, new_title, original_title),
        chart=chart, samples=draw_samples, caption=status_line,
        starting="Starting: the training process is loading the model and measuring both losses...",
        finished=lambda run: f"Finished: {run.step:,} steps of fine-tuning.")


def draw_samples(run: RunView) -> None:
    """The model's writing before the fine-tune (step 0) and now, from the same prompt and random seed."""
    if not run.samples:
        return
    prompt = (run.config or {}).get("sample_prompt", "\n")
    where = "a new line" if prompt == "\n" else f'"{prompt}"'
    st.markdown(f"**What the model writes**, starting from {where}, with the same random seed each time:")
    left, right = st.columns(2)
    first_step, first = run.samples[0]
    left.caption(f"Before: step {first_step:,}" + (" (the model as it came)" if first_step == 0 else ""))
    left.code(first, language=None, wrap_lines=True)
    if len(run.samples) > 1:
        step, text = run.samples[-1]
        right.caption(f"After: step {step:,}" + ("" if not run.active else " (so far)"))
        right.code(text, language=None, wrap_lines=True)
    else:
        right.caption(next_sample_words(TrainConfig.from_dict(run.config)) if run.config else
                      "After: the model writes again when the run ends.")


# ------------------------------------------------------------------ the widget


def _start(params: FinetuneRunParams) -> None:
    """Look everything up again here (a button's arguments are those of the script run that drew it)."""
    from ui.learner_corpus import bundled_text

    me = session.learner()
    if any(r.active for r in run_view.active_runs(me.id)):
        return
    source, _ = pick_source(me.id, params.source_run_key)
    if source is None:
        return
    run_view.start(me.id, params.run_key, run_config(params, source), bundled_text(params.corpus),
                   label=f"{me.name} fine-tune on {corpus_title(params.corpus)}", finetune_from=source.run_dir,
                   original_text=bundled_text(source.original_corpus))



# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.train.finetune:finetune_config", "engine.train.finetune:loss_shift")


def render(params: FinetuneRunParams, key: str) -> bool:
    """Returns True once the learner's fine-tune has ended, so the card's `after` text discusses a real result."""
    me = session.learner()
    new_title, original_title = corpus_title(params.corpus), corpus_title(ORIGINAL_CORPUS)
    source, source_sentence = pick_source(me.id, params.source_run_key)
    st.markdown(source_sentence)
    vocab_size = None
    if source is not None:
        report = _fit_report(source.run_dir, ckpt_stamp(source.run_dir), params.corpus)
        vocab_size = report["vocab_size"]
        config = run_config(params, source)
        budget = (f"**{config.time_budget:.0f} s**" if config.max_steps is None else f"**{config.max_steps} steps**")
        st.markdown(f"It goes on learning from **{new_title}** ({report['total_chars']:,} characters) for {budget}, "
                    f"at {config.lr / float(source.config.get('lr') or PRESETS['lesson'].lr):.0%} of the peak "
                    f"learning rate it first trained with. {eval_every_words(config)} it is measured on "
                    f"both texts: the new one and {original_title}, the one it learned first.")
        st.markdown(replaced_sentence(report, new_title))

    run = run_view.load(me.id, params.run_key)
    start_stop_buttons("Start fine-tuning", key, params.run_key, run, source is not None, _start, (params,))
    if run is None:
        st.caption("Nothing fine-tuned yet: press Start and watch both curves.")
        return False
    run_panel.show_run(run, panel(params, vocab_size), key)
    return not run.active
