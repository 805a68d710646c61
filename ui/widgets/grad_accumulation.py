"""Lesson 9: gradient accumulation on a real batch. The learner splits one training batch of the shown model into
micro-batches and sees the accumulated gradient equal the one-pass gradient, and what forgetting the ÷ k does
(`engine.train.accumulation.accumulate`)."""

from __future__ import annotations

import streamlit as st
import torch

from course.widgets import GradAccumulationParams
from engine.train.accumulation import Accumulation, accumulate
from engine.transform.data import TextDataset
from ui import model_source, run_text, session
from ui.text import escape_md

SEED = 0  # the batch drawn: the same one for every split, so only the split changes


@st.cache_data(show_spinner="Running the batch forwards and backwards...", max_entries=32)
def _accumulate(run_dir: str, step: int, text_id: str, _text: str, batch: int, micro: int) -> Accumulation:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    block = model.config.block_size
    data = TextDataset(_text, tokenizer)
    x, y = data.get_batch("train", batch, block, torch.Generator().manual_seed(SEED))  # (B, T) each
    return accumulate(model, x, y, micro)


def divisors(n: int) -> list[int]:
    """The micro-batch sizes a batch of n sequences splits into evenly.

    >>> divisors(32)
    [1, 2, 4, 8, 16, 32]
    """
    return [d for d in range(1, n + 1) if n % d == 0]


def summary(a: Accumulation) -> str:
    """What the split did, in one paragraph of the measured numbers.

    >>> print(summary(Accumulation(32, 8, 4, 2048, 1.43, [1.4, 1.5, 1.41, 1.41], 0.9, 6e-9, 3e-7, 4.0)))
    The batch of **32** sequences (**2,048** predictions per optimizer step) went through in **4** backward passes of **8**. Each pass's loss was divided by 4 before its backward pass, and the gradients added up in place. The largest difference from the one-pass gradient, over every entry, is **6e-09**: **3e-07** of the largest entry, float rounding.
    """
    if a.passes == 1:
        return (f"The batch of **{a.batch}** sequences (**{a.tokens:,}** predictions per optimizer step) went through "
                "in **one** backward pass: nothing to accumulate. Pick a smaller micro-batch.")
    return (f"The batch of **{a.batch}** sequences (**{a.tokens:,}** predictions per optimizer step) went through in "
            f"**{a.passes}** backward passes of **{a.micro}**. Each pass's loss was divided by {a.passes} before its "
            f"backward pass, and the gradients added up in place. The largest difference from the one-pass gradient, "
            f"over every entry, is **{a.max_difference:.1g}**: **{a.relative_difference:.1g}** of the largest entry, "
            "float rounding.")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.train.accumulation:accumulate",)


def render(params: GradAccumulationParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    found = run_text.trained_text(me.id, source.run_dir, source.own)
    if found is None:
        st.warning("No text this course knows can be read by this model's tokenizer, so no batch can be drawn.")
        return
    text_id, text, title = found
    sizes = divisors(params.batch)
    micro = st.select_slider("Sequences per backward pass (the micro-batch)", sizes, value=params.micro,
                             key=f"{key}-micro", help=f"The optimizer step always uses all {params.batch} sequences; "
                                                      "this is how many go through the model at once.")
    a = _accumulate(source.run_dir, source.final_step, text_id, text, params.batch, micro)
    st.caption(f"One training batch of {escape_md(title)}: {params.batch} sequences of the model's full context, "
               "drawn the way the trainer draws them (the same batch for every split).")
    cols = st.columns(4)
    cols[0].metric("Backward passes per step", f"{a.passes}")
    cols[1].metric("Predictions per step", f"{a.tokens:,}", help="The same whatever the split.")
    cols[2].metric("Activations held at once", f"{a.micro / a.batch:.0%}",
                   help="Of the whole batch's: only one micro-batch's activations wait for its backward pass.")
    cols[3].metric("Largest gradient difference", f"{a.max_difference:.1g}")
    st.markdown(summary(a))
    if a.passes > 1:
        losses = " · ".join(f"{v:.3f}" for v in a.micro_losses)
        st.markdown(f"The micro-batches' own losses: {losses}. Their mean, "
                    f"{sum(a.micro_losses) / len(a.micro_losses):.4f}, is the whole batch's loss, {a.loss:.4f}.")
        st.markdown(f"**Forget the ÷ {a.passes}** and the added-up gradient is **{a.unscaled_ratio:.2f}×** as long "
                    "as the one-pass gradient, in the same direction. Lesson 7's plain rule would take a step that "
                    "many times too long. AdamW and Muon scale each step by the gradient's own size and mostly absorb "
                    "it, but clipping, which looks at the gradient's length, may now cut it down.")
