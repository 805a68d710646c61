"""Lesson 9's data-parallel run. The learner's model (the lesson preset, on their corpus) trains twice, for the same
time: once in one process, once in two processes working together (torchrun with gloo, engine.runs.ranks). The page
shows both loss curves against tokens seen, and a table of tokens per step, tokens per second and losses
(engine.train.data_parallel.compare). Then one step of the two-process run is taken apart on a real model
(engine.train.data_parallel.ddp_step).

Both are ordinary runs of the learner's (`ui.run_view.start` under the keys `<run_key>-1` and `<run_key>-2`, one
batch), so they wait in the queue behind any other run, survive page switches and restarts, and take this machine's
slot one after the other. While either is queued or training, one fragment polls both each second and sends their
heartbeats.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
import torch

from course.widgets import DataParallelParams
from engine.device import physical_cores
from engine.number_format import file_size, loss
from engine.train.config import PRESETS, TrainConfig
from engine.train.data_parallel import Comparison, DDPStep, compare, ddp_step
from engine.train.status import RunStatus
from engine.transform.data import TextDataset
from ui import learner_corpus, live_chart, model_source, run_panel, run_status, run_text, run_view, session
from ui.run_view import RunView
from ui.text import escape_md

POLL_SECONDS = 1.0
PROCESSES = (1, 2)  # the two runs: one process, then two
EVAL_EVERY_S = 2.0  # about ten points per curve in a 20 s run
EVAL_BATCHES = 10  # per estimate and per process: cheap, so evaluations take little of either run's time
STEP_SEQUENCES = 8  # the batch of the step taken apart: 4 sequences per rank
SEED = 0  # that batch: the same one every time


def run_keys(params: DataParallelParams) -> list[str]:
    """One run key per run: `ddp-1` (one process) and `ddp-2` (two).

    >>> run_keys(DataParallelParams())
    ['ddp-1', 'ddp-2']
    """
    return [f"{params.run_key}-{n}" for n in PROCESSES]


def run_config(params: DataParallelParams) -> TrainConfig:
    """Both runs' config: the lesson preset for the card's time budget, evaluated every EVAL_EVERY_S seconds, with
    no text samples (they would cost each run time and show nothing here). The batch is per process, so the
    two-process run takes twice the tokens per step. Tests replace this function to train the tiny preset.

    >>> c = run_config(DataParallelParams())
    >>> c.time_budget, c.max_steps, c.batch_size * c.model.block_size
    (20.0, None, 2048)
    """
    return replace(PRESETS["lesson"], time_budget=float(params.time_budget), max_steps=None,
                   eval_every_s=EVAL_EVERY_S, eval_batches=EVAL_BATCHES, sample_interval=0, sample_every_s=None)


def submit(learner_id: int, run_key: str, config: TrainConfig, text: str, label: str, processes: int,
           batch: str) -> str | None:
    """One of the two runs, as the learner's (a function of its own so tests can stand in for the manager)."""
    return run_view.start(learner_id, run_key, config, text, label=label, batch=batch, processes=processes)


def _runs(learner_id: int, params: DataParallelParams) -> list[RunView | None]:
    return [run_view.load(learner_id, k) for k in run_keys(params)]


def _start(params: DataParallelParams) -> None:
    """Submit both runs as one request of the learner's: one process first, then two. If the queue refuses the
    first, the second is not asked for, and the card says why."""
    me = session.learner()
    text, config = learner_corpus.training_text(me.id), run_config(params)
    for key, n in zip(run_keys(params), PROCESSES, strict=True):
        label = f"{me.name} data parallel: {n} process" + ("es" if n > 1 else "")
        if submit(me.id, key, config, text, label, n, batch=f"ddp-{params.run_key}") is None:
            return


def _stop(params: DataParallelParams) -> None:
    me = session.learner().id
    for run in _runs(me, params):
        if run is not None:
            run_view.stop(run, me)


def intro(config: TrainConfig, title: str) -> str:
    """What the two runs are, in numbers from their config.

    >>> print(intro(run_config(DataParallelParams()), "Tiny Shakespeare"))
    Both runs train the lesson's model on **Tiny Shakespeare** for **20 s** each, one after the other. Every process takes batches of 32 sequences × 64 tokens = **2,048 tokens**. One process makes a step of that. Two processes each take a batch of their own and average their gradients, so one step of theirs sees **4,096 tokens**: twice as many per step, in the same time budget.
    """
    per_rank = config.batch_size * config.model.block_size
    budget = f"{config.time_budget:g} s" if config.time_budget is not None else f"{config.max_steps:,} steps"
    return (f"Both runs train the lesson's model on **{escape_md(title)}** for **{budget}** each, one "
            f"after the other. Every process takes batches of {config.batch_size} sequences × "
            f"{config.model.block_size} tokens = **{per_rank:,} tokens**. One process makes a step of that. Two "
            "processes each take a batch of their own and average their gradients, so one step of theirs sees "
            f"**{per_rank * PROCESSES[1]:,} tokens**: twice as many per step, in the same time budget.")


def _status_cell(run: RunView | None) -> str:
    if run is None:
        return "not started"
    if run.status == RunStatus.QUEUED:
        return f"⏳ {run_status.waiting_phrase(run.queue_position, run.starts_in_s)}"
    if run.status == RunStatus.RUNNING:
        return f"🟢 training: step {run.step:,}" if run.metrics else "🟢 starting"
    return run_status.label(run.status)


def table(runs: list[RunView | None], c: Comparison) -> str:
    """Both runs side by side, as one Markdown table (one element: redrawn every second while they train)."""
    lines = ["| | one process | two processes |", "|---|---:|---:|",
             f"| Status | {_status_cell(runs[0])} | {_status_cell(runs[1])} |"]
    lines += [f"| {what} | {a} | {b} |" for what, a, b in c.rows()]
    return "\n".join(lines)


def verdict(c: Comparison) -> str:
    """The comparison in words, from its numbers (once both runs have ended).

    >>> from engine.train.data_parallel import RunSide
    >>> one = RunSide(1, "finished", 2048, 100, 204800, 20.0, 2.6, [(0, 4.2), (204800, 2.6)])
    >>> two = RunSide(2, "finished", 4096, 60, 245760, 20.0, 2.5, [(0, 4.2), (245760, 2.5)])
    >>> print(verdict(Comparison(one, two, 204800)))
    Two processes reached **1.20×** the tokens per second of one. After the same time, the validation loss was **2.600** with one process and **2.500** with two. At the same **204,800** tokens seen, it was **2.600** and **2.783**: per token, the two-process run learned less, since it took half as many steps, each of a twice-as-big batch.
    """
    parts = []
    if c.speedup is not None:
        parts.append(f"Two processes reached **{c.speedup:.2f}×** the tokens per second of one.")
    if c.one.final_loss is not None and c.two.final_loss is not None:
        parts.append(f"After the same time, the validation loss was **{loss(c.one.final_loss)}** with one process "
                     f"and **{loss(c.two.final_loss)}** with two.")
    a, b = c.loss_at_common(c.one), c.loss_at_common(c.two)
    if a is not None and b is not None:
        if abs(a - b) < 0.02:
            why = "per token seen, the two learned about the same."
        elif b > a:
            why = ("per token, the two-process run learned less, since it took half as many steps, each of a "
                   "twice-as-big batch.")
        else:
            why = "per token, the two-process run learned a little more this time."
        parts.append(f"At the same **{c.common_tokens:,}** tokens seen, it was **{loss(a)}** and **{loss(b)}**: {why}")
    return " ".join(parts)


def chart(c: Comparison) -> dict:
    """Both validation curves against tokens seen (not steps: a step of two processes holds twice the tokens)."""
    curves = [live_chart.Curve("one process", c.one.curve, bold=True),
              live_chart.Curve("two processes", c.two.curve, bold=True)]
    return live_chart.loss_chart_spec(curves, y_title="validation loss (nats per token)", x_title="tokens seen")


def draw(learner_id: int, params: DataParallelParams, key: str) -> tuple[list[RunView | None], Comparison | None]:
    """The chart, the table and each run's device sentence, as they stand now."""
    runs = _runs(learner_id, params)
    if runs[0] is None or runs[1] is None:
        return runs, None
    c = compare(runs[0], runs[1])
    if c.one.curve or c.two.curve:
        live_chart.draw(chart(c), key=f"{key}-chart",
                        alt="Validation loss against tokens seen, one process and two processes")
    st.markdown(table(runs, c))
    for n, run in zip(PROCESSES, runs, strict=True):
        if run.device_sentence:
            st.caption(f"{'One process' if n == 1 else 'Two processes'}: {run.device_sentence.split('. ')[0]}")
    return runs, c


@st.fragment(run_every=POLL_SECONDS)
def _live(learner_id: int, params: DataParallelParams, key: str) -> None:
    """Redrawn every second while either run is queued or training; heartbeats both. Once both have ended, one
    full rerun draws the result still."""
    runs, _ = draw(learner_id, params, key)
    for run in runs:
        if run is not None:
            run_view.heartbeat(run)
    if not any(run is not None and run.active for run in runs):
        st.rerun(scope="app")


def machine_note(params_count: int | None) -> str:
    """Why tokens per second barely move on this machine: the same share of its cores, plus an all-reduce per step."""
    cores = physical_cores()
    sent = (f" (**{file_size(params_count * 4)}** of float32 gradients, one per parameter)"
            if params_count else "")
    return (f"**Why so little speed here.** This machine has **{cores}** CPU core{'s' if cores != 1 else ''}, and "
            "each run got the same share of them (the lines above say how many threads). The one process kept its "
            "share busy with its threads; the two processes split the same share between them, so together they do "
            "about the same arithmetic per second. On top of that they average their gradients at every "
            f"step{sent}. Two processes sharing one machine's CPU show how data parallelism works, not what it is "
            "for.")


GPU_NOTE = ("**What changes on GPUs.** Each rank is a GPU of its own, with its own arithmetic and memory, so n ranks "
            "do n times the sums per second. The gradients are averaged by NCCL, GPU to GPU over NVLink, a direct "
            "link much faster than going through the CPU. And DDP does not wait for the backward pass to end: it "
            "averages each group (bucket) of gradients as soon as the backward pass has produced it, while the "
            "rest are still being computed, so the all-reduce hides behind the computing. Tokens per second then "
            "grow almost n-fold, and every GPU still holds a whole copy of the model.")


@st.cache_data(show_spinner="Taking one step apart...", max_entries=16)
def _step(run_dir: str, step: int, text_id: str, _text: str) -> DDPStep:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    x, y = TextDataset(_text, tokenizer).get_batch("train", STEP_SEQUENCES, model.config.block_size,
                                                   torch.Generator().manual_seed(SEED))  # (B, T) each
    return ddp_step(model, x, y, ranks=PROCESSES[1])


def step_summary(s: DDPStep) -> str:
    """One step of two ranks, in the measured numbers.

    >>> print(step_summary(DDPStep(2, 4, 512, [2.1, 2.3], [0.9, 1.1], 0.55, 2.2, 0.8, 0.8, 4e-9, 2e-7, 1000, 4000, 4000)))
    The batch of **8** sequences (**512** tokens) was split in two: **4** sequences for each rank. Rank 0's loss on its share was **2.100**, rank 1's **2.300**; the whole batch's, **2.200**, is their mean. Their gradients are far from equal (cosine **0.55**, where 1 would be the same direction): each share of 4 sequences is a small, noisy sample. Yet their average differs from the whole batch's gradient by at most **4e-09** per entry (**2e-07** of the largest): float rounding. Averaging the two ranks' gradients, the all-reduce, is training on the whole batch.
    """
    cosine = f"{s.rank_cosine:.2f}".replace("-0.00", "0.00")
    return (f"The batch of **{s.sequences_per_rank * s.ranks}** sequences (**{s.tokens:,}** tokens) was split in two: "
            f"**{s.sequences_per_rank}** sequences for each rank. Rank 0's loss on its share was "
            f"**{loss(s.rank_losses[0])}**, rank 1's **{loss(s.rank_losses[1])}**; the whole batch's, "
            f"**{loss(s.whole_loss)}**, is their mean. Their gradients are far from equal (cosine **{cosine}**, where 1 "
            f"would be the same direction): each share of {s.sequences_per_rank} sequences is a small, noisy sample. "
            f"Yet their average differs from the whole batch's gradient by at most **{s.max_difference:.1g}** per entry (**{s.relative_difference:.1g}** of the "
            "largest): float rounding. Averaging the two ranks' gradients, the all-reduce, is training on the "
            "whole batch.")


def draw_step(learner_id: int, key: str) -> None:
    """One step of the two-process run taken apart, on the learner's model or the reference model."""
    st.markdown("**One step of the two processes, taken apart.**")
    source = model_source.pick(learner_id, key=f"{key}-model")
    found = run_text.trained_text(learner_id, source.run_dir, source.own)
    if found is None:
        st.caption("No text this course knows can be read by this model's tokenizer, so no batch can be drawn.")
        return
    text_id, text, _title = found
    s = _step(source.run_dir, source.final_step, text_id, text)
    st.markdown(step_summary(s))
    st.markdown(f"Every step, each rank sends its **{s.parameters:,}** gradient entries into the all-reduce: "
                f"**{file_size(s.allreduce_bytes)}** in float32. A ring all-reduce, the usual way, sends about "
                f"2 (n − 1) / n of that out of each rank: **{file_size(s.ring_bytes_per_rank)}** for two ranks.")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.train.data_parallel:compare", "engine.train.data_parallel:ddp_step")


def render(params: DataParallelParams, key: str) -> bool:
    """Returns True once both runs have ended, so the card's `after` text discusses a real result."""
    me = session.learner()
    st.markdown(intro(run_config(params), learner_corpus.chosen(me.id).title))
    runs = _runs(me.id, params)
    busy = any(run is not None and run.active for run in runs)
    c1, c2 = st.columns([2, 1])
    c1.button("Train with one process, then two", key=f"{key}-start", type="primary", icon=":material/play_arrow:",
              disabled=busy, on_click=_start, args=(params,), width="stretch")
    c2.button("Stop", key=f"{key}-stop", icon=":material/stop:", disabled=not busy, on_click=_stop, args=(params,),
              width="stretch")
    run_panel.queue_full_notice(*run_keys(params))
    ended = False
    if all(run is None for run in runs):
        st.caption("Nothing trained yet: press the button and watch both curves.")
    elif busy:
        for run in runs:
            if run is not None and run.active:
                run_view.polled_by_page(run)
        _live(me.id, params, key)
    else:
        runs, c = draw(me.id, params, key)
        ended = c is not None
        if c is not None and (words := verdict(c)):
            st.markdown(words)
        params_count = next((r.params for r in runs if r is not None and r.params), None)
        st.markdown(machine_note(params_count))
        st.markdown(GPU_NOTE)
    draw_step(me.id, key)
    return ended
