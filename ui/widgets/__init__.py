"""The UI side of the widget registry: widget name -> render function.

`course/widgets.py` lists the same names with their parameter models (the validator's side). A test checks that
both sides name exactly the same widgets. Every render function takes the validated params and a key prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from course.widgets import WIDGET_PARAMS
from ui.code_view import render_code
from ui.text import escape_md
from ui.widgets import (
    attention_heatmap,
    bpe_trainer,
    checkpoint_anatomy,
    checkpoint_file,
    cleaning_lab,
    compute_optimal,
    corpus_picker,
    cost_meter,
    counting_loss,
    dedup_compare,
    dedup_lab,
    descent_steps,
    embedding_map,
    embedding_neighbours,
    embedding_table_size,
    finetune_run,
    forward_pass,
    model_price,
    model_vs_counts,
    next_char_counts,
    next_token_probs,
    overfit_run,
    parameter_breakdown,
    pipeline_trace,
    rag_playground,
    report_card,
    scaling_sweep,
    timeline_samples,
    tokenizer_playground,
    train_run,
    vocab_sweep,
)

RENDERERS: dict[str, Callable[[Any, str], bool | None]] = {
    "pipeline_trace": pipeline_trace.render,
    "counting_loss": counting_loss.render,
    "descent_steps": descent_steps.render,
    "next_char_counts": next_char_counts.render,
    "train_run": train_run.render,
    "corpus_picker": corpus_picker.render,
    "cleaning_lab": cleaning_lab.render,
    "dedup_lab": dedup_lab.render,
    "dedup_compare": dedup_compare.render,
    "tokenizer_playground": tokenizer_playground.render,
    "bpe_trainer": bpe_trainer.render,
    "vocab_sweep": vocab_sweep.render,
    "attention_heatmap": attention_heatmap.render,
    "parameter_breakdown": parameter_breakdown.render,
    "forward_pass": forward_pass.render,
    "embedding_map": embedding_map.render,
    "embedding_neighbours": embedding_neighbours.render,
    "embedding_table_size": embedding_table_size.render,
    "next_token_probs": next_token_probs.render,
    "model_vs_counts": model_vs_counts.render,
    "timeline_samples": timeline_samples.render,
    "overfit_run": overfit_run.render,
    "checkpoint_file": checkpoint_file.render,
    "scaling_sweep": scaling_sweep.render,
    "report_card": report_card.render,
    "cost_meter": cost_meter.render,
    "model_price": model_price.render,
    "compute_optimal": compute_optimal.render,
    "finetune_run": finetune_run.render,
    "rag_playground": rag_playground.render,
    "checkpoint_anatomy": checkpoint_anatomy.render,
}


def render_widget(name: str, params: dict[str, Any], key: str) -> bool:
    """Draw a live widget inside a card; a failure is contained to the card (the lesson keeps working).

    Returns whether the card's `after` text should show: a widget returns False while the learner has not yet
    done the thing the text discusses (e.g. no training run yet), so results are not revealed before the guess.
    """
    model = WIDGET_PARAMS[name].model_validate(params)
    with st.container(border=True, key=f"widget-{key}"):
        try:
            reveal = RENDERERS[name](model, key) is not False
        except Exception as err:  # a widget bug must not take the lesson down
            st.error(f"This live demo hit a problem and stopped: {escape_md(str(err))}", icon=":material/error:")
            reveal = True
        render_code(name, key)
        return reveal
