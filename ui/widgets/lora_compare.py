"""Lesson 11's LoRA: the same supervised fine-tune as the card before, with low-rank adapters instead of every
weight, and the two set side by side: what each trains (engine.post_training.lora.count_trainable), and what each
reached on the held-out answers and kept of Tiny Shakespeare, from the two runs' own records.

The LoRA run is an SFT run with `lora_rank` set (engine.post_training.sft.sft_config), started and drawn like the
full one (ui/widgets/sft_run.py); its checkpoint holds the merged weights, so the chat box can talk to it too.
"""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from course.widgets import LoraCompareParams
from engine.load import checkpoint
from engine.post_training import lora
from engine.post_training.chat_template import SPECIAL_NAMES
from engine.post_training.sft import sft_config
from engine.train.config import TrainConfig
from engine.train.finetune import loss_shift
from engine.transform.model import GPT, GPTConfig
from ui import assistant_runs, finetune_view, live_chart, run_panel, run_view, session
from ui.run_view import RunView

RANKS = (1, 2, 4, 8, 16)


def run_config(params: LoraCompareParams, rank: int) -> TrainConfig:
    """The LoRA run's settings: the full SFT's, at LoRA's learning rate, with adapters of `rank`. Tests replace it.

    >>> cfg = run_config(LoraCompareParams(), 4)
    >>> cfg.sft, cfg.lora_rank, cfg.lr
    (True, 4, 0.004)
    """
    return sft_config(params.steps, lora_rank=rank)


@st.cache_data(show_spinner=False, max_entries=16)
def counts(run_dir: str, rank: int) -> lora.TrainableCount:
    """What LoRA at `rank` trains on the source model's shape, with the special tokens' three rows added."""
    saved = checkpoint.read_checkpoint(run_dir)["model_config"]
    shape = GPTConfig.from_dict({**saved, "vocab_size": int(saved["vocab_size"]) + len(SPECIAL_NAMES)})
    return lora.count_trainable(GPT(shape), rank)


def compare_rows(full: RunView | None, tuned: RunView | None, count: lora.TrainableCount) -> list[dict[str, str]]:
    """One row per run for the table: what it trains, its steps, its held-out answers' loss and Shakespeare's."""
    rows = []
    for name, run, trains in (("Full fine-tuning", full, count.total_model),
                              (f"LoRA, rank {count_rank(tuned)}", tuned, count.trainable)):
        shift = loss_shift(run.metrics) if run is not None and not run.active else None
        rows.append({"run": name, "trainable parameters": f"{trains:,} ({trains / count.total_model:.1%})",
                     "steps": f"{run.step:,}" if shift else "not run yet",
                     "held-out answers' loss": _loss(shift.new_after if shift else None),
                     "Tiny Shakespeare's loss": (f"{_loss(shift.original_before)} → {_loss(shift.original_after)}"
                                                 if shift else "")})
    return rows


def count_rank(run: RunView | None) -> str:
    return str((run.config or {}).get("lora_rank", "?")) if run is not None else "?"


def _loss(value: float | None) -> str:
    return f"{value:.3f}" if value is not None and math.isfinite(value) else "–"


def chart_spec(full: RunView | None, tuned: RunView | None) -> dict:
    """Both runs' held-out answers' loss, step by step, on one chart (ui.live_chart)."""
    curves = [live_chart.Curve(name, run.evals, bold=True)
              for name, run in (("full fine-tuning", full), ("LoRA", tuned)) if run is not None and run.evals]
    return live_chart.loss_chart_spec(curves, y_title="held-out answers' loss (nats per token)")


def _start(params: LoraCompareParams, rank: int) -> None:
    assistant_runs.start_sft(params.run_key, params.source_run_key, run_config(params, rank),
                             f"LoRA fine-tune, rank {rank}")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.post_training.lora:LoraAdapters", "engine.post_training.lora:merged_state_dict",
               "engine.post_training.lora:count_trainable")


def render(params: LoraCompareParams, key: str) -> bool:
    """Returns True once the LoRA run has ended."""
    me = session.learner()
    source, source_sentence = assistant_runs.pick_source(me.id, params.source_run_key)
    st.markdown(source_sentence)
    rank = st.select_slider("LoRA rank r", RANKS, value=params.rank if params.rank in RANKS else 4,
                            key=f"{key}-rank", help="The inner size of each adapter: B (out × r) times A (r × in).")
    if source is not None:
        count = counts(source.run_dir, rank)
        a, b, c = st.columns(3)
        a.metric("Full fine-tuning trains", f"{count.total_model:,}")
        b.metric(f"LoRA's adapters at rank {rank}", f"{count.adapters:,}")
        c.metric("LoRA trains in all", f"{count.trainable:,}", delta=f"{count.fraction:.1%} of the model",
                 delta_color="off", delta_arrow="off")
        st.caption(f"LoRA's total is its adapters plus the token table ({count.token_table:,} numbers), which stays "
                   "trainable because the three special tokens are new rows that must learn what they mean. Full "
                   f"fine-tuning trains every weight, the position table's {count.positions:,} included; a run's "
                   f"own caption counts {count.total_model - count.positions:,} parameters, leaving that table out "
                   "as nanoGPT does.")
    full, tuned = run_view.load(me.id, params.full_run_key), run_view.load(me.id, params.run_key)
    finetune_view.start_stop_buttons(f"Start the LoRA fine-tune (rank {rank})", key, params.run_key, tuned,
                                     source is not None, _start, (params, rank))
    if tuned is None:
        st.caption("No LoRA run yet: press Start. It trains for as long as the full fine-tune did.")
        return False
    vocab = assistant_runs.vocab_with_specials(source)
    run_panel.show_run(tuned, assistant_runs.panel(vocab), key)
    if tuned.active or not (Path(tuned.run_dir) / checkpoint.CKPT).is_file():
        return False
    st.markdown("#### Full fine-tuning against LoRA")
    if full is None or full.active:
        st.info("Run the full fine-tune on the card above too, and the two appear side by side here.")
    if source is not None:
        st.dataframe(compare_rows(full, tuned, counts(source.run_dir, int(count_rank(tuned)))), hide_index=True,
                     width="stretch")
    if full is not None and full.evals and tuned.evals:
        live_chart.draw(chart_spec(full, tuned), key=f"{key}-compare",
                        alt="The held-out answers' loss of the full fine-tune and of the LoRA run, step by step")
    return True
