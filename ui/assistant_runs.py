"""Lesson 11's fine-tuned assistants on a page, shared by its cards (the SFT run, LoRA, the chat template, the chat
box): which model they start from (`pick_source`, lesson 10's choice with one more rule), the SFT run's panel
(its two losses and its answers while it learns) and the fine-tuned model loaded once per checkpoint.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine.load import checkpoint
from engine.load.reference import reference_run_dir
from engine.post_training.chat_template import SPECIAL_NAMES, answer_from, shown
from engine.post_training.instructions import bundled
from engine.runs.snapshot import saved_step
from engine.train.config import TrainConfig
from engine.transform.tokenization import tokenizer_from_dict
from ui import finetune_view, run_panel, run_view, session
from ui.finetune_view import Source
from ui.run_view import RunView

ORIGINAL_CORPUS = finetune_view.ORIGINAL_CORPUS
NEW_TITLE = "the held-out answers"


def pick_source(learner_id: int, source_run_key: str) -> tuple[Source | None, str]:
    """The model SFT starts from, as lesson 10's fine-tune picks it; a model whose tokenizer is not made of
    characters (the learner's BPE run) cannot take the template's special tokens here, so the reference model
    stands in, and the sentence says why."""
    source, sentence = finetune_view.pick_source(learner_id, source_run_key)
    if source is not None and source.own and tokenizer_kind(source.run_dir) != "char":
        ref = reference_run_dir()
        source = Source(str(ref), False, saved_step(ref) or 0, {})
        sentence = ("Your lesson-7 model reads BPE tokens; this card adds its special tokens to a character model, so "
                    f"it starts from **the course's reference model** (trained on Tiny Shakespeare for "
                    f"{source.step:,} steps).")
    return source, sentence


@st.cache_data(show_spinner=False, max_entries=8)
def tokenizer_info(run_dir: str) -> tuple[str, int]:
    """(kind, vocabulary size) of a run folder's tokenizer."""
    tokenizer = tokenizer_from_dict(checkpoint.read_checkpoint(run_dir)["tokenizer"])
    return tokenizer.kind, tokenizer.vocab_size


def tokenizer_kind(run_dir: str) -> str:
    return tokenizer_info(run_dir)[0]


def vocab_with_specials(source: Source | None) -> int | None:
    """The SFT model's vocabulary: the source's tokens and the template's special tokens (for the chart's guess line)."""
    return tokenizer_info(source.run_dir)[1] + len(SPECIAL_NAMES) if source is not None else None


def draw_samples(run: RunView) -> None:
    """The run's samples answer one held-out question; shown with the special tokens by name and cut at the
    model's `<|end|>` (what comes after it, the model was never asked for)."""
    if not run.samples:
        return
    prompt = (run.config or {}).get("sample_prompt", "")
    st.markdown(f"**Its answer to a held-out question while it learns**: `{shown(prompt)}` ...")
    left, right = st.columns(2)
    for col, (step, text), when in ((left, run.samples[0], "Before"), (right, run.samples[-1], "Now")):
        if col is right and len(run.samples) < 2:
            break
        answer, ended = answer_from(text[len(prompt):] if text.startswith(prompt) else text)
        col.caption(f"{when}: step {step:,}" + (" · ended with <|end|>" if ended else " · did not end by itself"))
        col.code(answer or "(nothing)", language=None, wrap_lines=True)


def panel(vocab_size: int | None) -> run_panel.Panel:
    original_title = finetune_view.corpus_title(ORIGINAL_CORPUS)

    def chart(run: RunView) -> tuple[dict, str] | None:
        if not (run.evals or run.evals_original):
            return None
        return (finetune_view.chart_spec(run, NEW_TITLE, original_title, vocab_size),
                f"Validation loss on the held-out answers and on {original_title}, step by step")

    return run_panel.Panel(
        numbers=lambda run: finetune_view.numbers_line(run, NEW_TITLE, original_title),
        result=lambda run: finetune_view.draw_result(run, NEW_TITLE, original_title),
        chart=chart, samples=draw_samples, caption=finetune_view.status_line,
        starting="Starting: the training process is adding the special tokens and measuring both losses...",
        finished=lambda run: f"Finished: {run.step:,} steps of supervised fine-tuning.")


@st.cache_resource(show_spinner=False, max_entries=4)
def load_model(run_dir: str, stamp: float) -> tuple[Any, Any]:
    """(model, tokenizer) of a run folder, loaded once per checkpoint (`stamp`: its file's time)."""
    model, tokenizer, _, _ = checkpoint.load_checkpoint(run_dir)
    return model, tokenizer


def start_sft(run_key: str, source_run_key: str, config: TrainConfig, label: str) -> None:
    """A Start button's callback for an SFT run (full or LoRA, as `config` says): the learner's model or the
    reference model fine-tuned on the instruction set, Tiny Shakespeare measured beside it. Everything is looked up
    again here (a button's arguments are those of the script run that drew it); nothing starts while another of
    the learner's runs trains."""
    from ui.learner_corpus import bundled_text

    me = session.learner()
    if any(r.active for r in run_view.active_runs(me.id)):
        return
    source, _ = pick_source(me.id, source_run_key)
    if source is None:
        return
    run_view.start(me.id, run_key, config, bundled().run_text(), label=f"{me.name} {label}",
                   finetune_from=source.run_dir, original_text=bundled_text(source.original_corpus))
