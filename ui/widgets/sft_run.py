"""Lesson 11's supervised fine-tuning: the learner's lesson-7 model (or the reference model) learns to answer in the
chat template from the course's instruction set, then answers the same questions beside the model it came from.

An SFT run is a fine-tune (lesson 10's, whose source picking, chart and loss tiles it shares through
ui/finetune_view.py and ui/assistant_runs.py) with `sft` on: the special tokens join the vocabulary, batches are whole exchanges and only the
answers are graded (engine.post_training). It goes through `ui.run_view.start` like every learner run: queued,
trained in a worker process, drawn by the shared run panel while it trains. Once it has ended, the page puts
held-out questions to both models (`engine.post_training.sft.base_vs_assistant`) and scores the held-out
exchanges (`score`), both cached by the checkpoint's folder and time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from course.widgets import SftRunParams
from engine.load import checkpoint
from engine.load.reference import reference_run_dir
from engine.post_training.chat_template import END, shown
from engine.post_training.chat_template import render as in_template
from engine.post_training.instructions import KINDS, bundled
from engine.post_training.sft import SideBySide, base_vs_assistant, score, sft_config
from engine.train.config import TrainConfig
from ui import finetune_view, run_panel, run_view, session
from ui.assistant_runs import load_model, panel, pick_source, start_sft, vocab_with_specials


def run_config(params: SftRunParams) -> TrainConfig:
    """The SFT run's settings (engine.post_training.sft.sft_config) for the card's time budget. Tests replace it.

    >>> cfg = run_config(SftRunParams())
    >>> cfg.sft, cfg.lora_rank, cfg.max_steps, cfg.time_budget, cfg.optimizer
    (True, 0, 200, None, 'adamw')
    """
    return sft_config(params.steps)


@st.cache_data(show_spinner="Asking both models the held-out questions...", max_entries=4)
def _comparison(base_dir: str, base_stamp: float, run_dir: str, stamp: float) -> dict[str, Any]:
    """Three held-out questions (one of each kind) to both models, and the held-out score of the fine-tuned one."""
    base, assistant = load_model(base_dir, base_stamp), load_model(run_dir, stamp)
    picks = {}
    for ex in bundled().validation:
        picks.setdefault(ex.kind, ex)
    sides = [base_vs_assistant(base, assistant, ex.question, ex.answer) for ex in picks.values()]
    return {"sides": sides, "scores": score(*assistant)}


def draw_side_by_side(sides: list[SideBySide]) -> None:
    for side in sides:
        st.markdown(f"**Question:** {side.question}" + (f" · the set's answer: **{side.expected}**" if side.expected
                                                         else ""))
        left, right = st.columns(2)
        left.caption("Before SFT: the question as plain text, and what the model writes after it")
        left.code(side.base, language=None, wrap_lines=True)
        right.caption("After SFT: the question in the template, and its answer"
                      + (" (it ended with <|end|>)" if side.assistant_ended else " (it did not end by itself)"))
        right.code(side.assistant or "(nothing)", language=None, wrap_lines=True)


def draw_scores(scores: list) -> None:
    rows = [{"kind of question": s.title, "held out": s.total,
             "answers ended with <|end|>": f"{s.ended} of {s.total}",
             "exactly right": "(any line counts)" if s.kind == "a_line" else f"{s.right} of {s.total}"}
            for s in scores]
    st.dataframe(rows, hide_index=True, width="stretch")


def _start(params: SftRunParams) -> None:
    start_sft(params.run_key, params.source_run_key, run_config(params), "supervised fine-tune")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.post_training.dialogue_data:DialogueDataset.get_batch",
               "engine.post_training.chat_template:grow_token_table", "engine.post_training.sft:base_vs_assistant")


def render(params: SftRunParams, key: str) -> bool:
    """Returns True once the learner's SFT run has ended, so the card's `after` text discusses a real result."""
    me = session.learner()
    source, source_sentence = pick_source(me.id, params.source_run_key)
    st.markdown(source_sentence)
    data, config = bundled(), run_config(params)
    passes = config.max_steps * config.batch_size / len(data.train) if config.max_steps else None
    length = (f"**{config.max_steps:,} steps** of {config.batch_size} exchanges, so it reads each one about "
              f"**{passes:.0f} times**" if passes else "its time budget")
    st.markdown(f"It learns from the course's instruction set: **{len(data.train):,}** exchanges to train on and "
                f"**{data.held_out}** held out, three kinds made from short lines of Tiny Shakespeare, for {length}, "
                f"at a learning rate of {config.lr:g}. One of each, as the model reads it:")
    examples = {}
    for ex in data.train:
        examples.setdefault(ex.kind, ex)
    st.code("\n".join(shown(in_template(ex.question, ex.answer)) for ex in examples.values()), language=None)
    st.caption(" · ".join(f"{KINDS[k]}" for k in examples))

    run = run_view.load(me.id, params.run_key)
    finetune_view.start_stop_buttons("Start supervised fine-tuning", key, params.run_key, run, source is not None,
                                     _start, (params,))
    if run is None:
        st.caption("Nothing fine-tuned yet: press Start, then compare the model before and after.")
        return False
    run_panel.show_run(run, panel(vocab_with_specials(source)), key)
    if run.active or not (Path(run.run_dir) / checkpoint.CKPT).is_file():
        return False
    base_dir = run.finetune.get("from") if run.finetune else None
    base_dir = base_dir or (source.run_dir if source is not None else str(reference_run_dir()))
    found = _comparison(base_dir, finetune_view.ckpt_stamp(base_dir), run.run_dir, finetune_view.ckpt_stamp(run.run_dir))
    st.markdown("#### Before and after, the same questions")
    st.caption(f"Held-out questions: their lines are in no exchange it trained on. The answers are greedy (the most "
               f"likely token each time), so they are the same every time you look. A special token shows by name; "
               f"{shown(END)} is where an answer ends.")
    draw_side_by_side(found["sides"])
    st.markdown(f"#### All {data.held_out} held-out questions")
    draw_scores(found["scores"])
    return True
