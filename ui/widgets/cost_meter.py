"""Lesson 9's cost meter: the learner's lesson-7 run in FLOPs, live while it trains, and what the same arithmetic
would take and cost on each chip of the catalogue.

Everything shown is worked out from the run's latest metrics record (`ui.run_compute`, on `engine.cost.flops`): FLOPs
per token split into the dense layers, the output head and attention; FLOPs so far; the FLOP/s the training steps
achieved; and, once this machine's peak is measured (`engine.cost.peak`, in the runs' precision), the model FLOPs
utilisation. Watching must not slow the run it watches: one fragment polls it every POLL_SECONDS and redraws a few
Markdown elements from arithmetic on one record (what that costs: docs/benchmarks.md). On a CPU the probe takes every
core, so its button is disabled while any run trains (and `measure_peak` refuses then anyway); a GPU's peak is
measured in the background as soon as the page (or the server) asks, runs or not: its fastest timing is kept.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from course.widgets import CostMeterParams
from engine.cost import peak as peak_store
from engine.cost.catalogue import accelerators
from engine.cost.flops import FlopsPerToken, count_parameters, flops_per_token, price_run
from engine.number_format import dollars, duration, sci, si
from ui import page_links, run_compute, run_status, run_view, session
from ui.run_view import RunView
from ui.text import markdown_table

POLL_SECONDS = 2.0  # as gentle as the sidebar's poll: the numbers move slowly enough
TRAINING_LESSON = "training-loop"


def split_line(per_token: FlopsPerToken) -> str:
    """Where one token's training FLOPs go, as a Markdown line.

    >>> from engine.transform.model import GPTConfig
    >>> split_line(flops_per_token(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=65)))
    'dense layers **148,416** (86%) · output head **12,480** (7%) · attention **12,288** (7%)'
    """
    parts = (("dense layers", per_token.dense), ("output head", per_token.head), ("attention", per_token.attention))
    return " · ".join(f"{name} **{n:,}** ({n / per_token.total:.0%})" for name, n in parts)


def price_rows(flops: float, parameters: int, tokens: int, utilisation: float) -> list[dict[str, str]]:
    """For every catalogue accelerator: how long `flops` would take on one chip at `utilisation` of its peak
    (the 16-bit peak, or FP32 where no 16-bit figure is published), what it would cost and the energy drawn."""
    rows = []
    for chip in accelerators():
        precision = "16bit" if chip.tflops_16bit is not None else "fp32"
        if (chip.tflops_16bit if precision == "16bit" else chip.tflops_fp32) is None:
            continue
        price = price_run(parameters, tokens, chip, count=1, utilisation=utilisation, flops=flops,
                          precision=precision)
        peak = chip.tflops_16bit if precision == "16bit" else chip.tflops_fp32
        rows.append({
            "Accelerator": chip.name,
            "Peak": f"{si(peak * 1e12, 'FLOP/s')} ({'16-bit' if precision == '16bit' else 'FP32'})",
            "Time": duration(price.wall_hours * 3600),
            "Cost": dollars(price.dollars),
            "Energy": "not published" if price.energy_kwh is None else si(price.energy_kwh * 1000, "Wh"),
        })
    return rows


PRECISION_WORDS = {"bfloat16": "bf16", "float32": "float32"}


def _peak_sentence(kept: peak_store.MeasuredPeak) -> str:
    when = dt.datetime.fromtimestamp(kept.measured_at).strftime("%d %b %Y, %H:%M")
    threads = f"{kept.threads} threads, " if kept.device == "cpu" else ""
    return (f"This machine's measured peak: **{si(kept.flops_per_s, 'FLOP/s')}** ({kept.device_name}, {threads}"
            f"{PRECISION_WORDS.get(kept.dtype, kept.dtype)} matrix multiplications, measured {when}).")


def run_precision(run: RunView) -> str | None:
    """The precision the run multiplies in, "bfloat16" or "float32", as its training process reported it (the
    device sentence), else as its config asked; None where neither says (Apple's GPU, a run not started yet).

    >>> run_precision(RunView("main", "r", "d", "running", device_sentence="Training on CPU, 2 threads, bf16"))
    'bfloat16'
    >>> run_precision(RunView("main", "r", "d", "running", device_sentence="Training on GPU 0 (NVIDIA H100), float32"))
    'float32'
    >>> run_precision(RunView("main", "r", "d", "queued", config={"dtype": "auto"})) is None
    True
    """
    sentence = run.device_sentence
    if "bf16" in sentence or "bfloat16" in sentence:
        return "bfloat16"
    if sentence and "MPS" not in sentence:
        return "float32"
    wanted = run.config.get("dtype")
    return wanted if wanted in PRECISION_WORDS else None


def precision_caveat(run_dtype: str | None, peak_dtype: str) -> str | None:
    """Why the utilisation reads high or low when the run and the peak multiplied in different precisions.

    >>> precision_caveat("bfloat16", "bfloat16") is None, precision_caveat(None, "float32") is None
    (True, True)
    >>> precision_caveat("bfloat16", "float32").endswith("so its utilisation reads high.")
    True
    """
    if run_dtype is None or run_dtype == peak_dtype:
        return None
    if run_dtype == "bfloat16":
        return ("This run trains in 16-bit numbers (bf16), which the hardware multiplies faster than the 32-bit "
                "numbers the peak was measured with, so its utilisation reads high.")
    return ("This run trains in 32-bit numbers (float32), which the hardware multiplies slower than the 16-bit "
            "numbers (bf16) the peak was measured with, so its utilisation reads low.")


def draw_meter(run: RunView, utilisation: float) -> None:
    """The meter for one moment of the run. Drawn by the polling fragment while it trains, once after."""
    st.caption(f"{run_status.label(run.status)} · {run.label or 'your run'} · step {run.step:,}"
               + (f" · {run.device_sentence}" if run.device_sentence else ""))
    kept = peak_store.measured_peak(run_compute.peak_device(run))
    rc = run_compute.compute(run, kept.flops_per_s if kept else None)
    if rc is None:
        st.markdown("The run is starting: its first numbers appear in a moment." if run.active else
                    "This run stopped before it recorded a training step: there is nothing to meter yet.")
        return
    config = run_compute.model_config(run)
    st.markdown(f"**FLOPs so far: {sci(rc.flops)}** ({rc.tokens:,} tokens × {rc.flops_per_token:,} FLOPs each)")
    st.markdown(f"Per token: {split_line(flops_per_token(config))}")
    rate = "measured after the first steps" if rc.achieved_flops_per_s is None else (
        f"**{si(rc.achieved_flops_per_s, 'FLOP/s')}** while the training steps ran")
    elapsed = run.metrics[-1].get("elapsed_s")
    average = "" if rc.average_flops_per_s is None or not elapsed else (
        f" · {si(rc.average_flops_per_s, 'FLOP/s')} averaged over all {duration(elapsed)} of the run, "
        "evaluations and samples included")
    st.markdown(f"Achieved FLOP/s: {rate}{average}")
    if kept is None:
        st.markdown("Utilisation: measure this machine's peak (below) to see what share of it your run used.")
    elif rc.mfu is not None:
        st.markdown(f"Model FLOPs utilisation: **{rc.mfu:.1%}** of this machine's measured peak "
                    f"({si(kept.flops_per_s, 'FLOP/s')}).")
        if (caveat := precision_caveat(run_precision(run), kept.dtype)) is not None:
            st.caption(caveat)
    st.markdown(f"**The same {sci(rc.flops)} FLOPs elsewhere**, one chip at {utilisation:.0%} of its peak:")
    st.markdown(markdown_table(price_rows(rc.flops, count_parameters(config).total, rc.tokens, utilisation)))


@st.fragment(run_every=POLL_SECONDS)
def _live_meter(learner_id: int, run_key: str, utilisation: float) -> None:
    """Redrawn every two seconds while the run trains; once it has ended, one full rerun draws it for good (and
    enables the peak button)."""
    run = run_view.load(learner_id, run_key)
    if run is None:
        return
    run_view.heartbeat(run)
    draw_meter(run, utilisation)
    if not run.active:
        st.rerun(scope="app")


def _measure(device: str, key: str) -> None:
    try:
        peak_store.measure_peak(device)
        st.session_state.pop(f"{key}-peak-busy", None)
    except peak_store.PeakBusy:
        st.session_state[f"{key}-peak-busy"] = True
    except RuntimeError as err:  # the worker failed (a GPU's driver, a timeout): said where the button is
        st.session_state[f"{key}-peak-error"] = str(err)


def _peak_controls(device: str, key: str) -> None:
    if device == "cpu":
        _cpu_peak_controls(key)
    else:
        _gpu_peak_controls(device, key)
    if (error := st.session_state.pop(f"{key}-peak-error", None)) is not None:
        st.warning(f"The measurement failed: {error}", icon=":material/warning:")


def _cpu_peak_controls(key: str) -> None:
    kept = peak_store.measured_peak("cpu")
    busy = peak_store.training_runs() > 0
    if kept is not None:
        st.caption(_peak_sentence(kept))
    st.button("Measure this machine's peak" if kept is None else "Measure the peak again", key=f"{key}-measure",
              icon=":material/speed:", disabled=busy, on_click=_measure, args=("cpu", key))
    if busy or st.session_state.pop(f"{key}-peak-busy", False):
        st.caption("Not while a run is training: the measurement takes every core for about a second and a half, "
                   "so it would slow the run down and read low. The button wakes up when the run ends.")
    else:
        st.caption("The measurement times big matrix multiplications for about a second and a half: the best "
                   "case for the hardware, a ceiling a model can approach but not reach.")


def _gpu_peak_controls(device: str, key: str) -> None:
    """A GPU's peak: measured in the background when none is kept (ensure_peak), whatever trains; the button
    measures it again, in a worker, in a few seconds (the fastest timing is kept, so runs beside it do not matter)."""
    kept = peak_store.ensure_peak(device)
    if kept is None and peak_store.measuring(device):
        _gpu_peak_measuring(device, key)
        return
    if kept is not None:
        st.caption(_peak_sentence(kept))
    elif (error := peak_store.probe_error(device)) is not None:
        st.warning(f"This GPU's peak could not be measured: {error}", icon=":material/warning:")
    st.button("Measure this GPU's peak" if kept is None else "Measure the peak again", key=f"{key}-measure",
              icon=":material/speed:", on_click=_measure, args=(device, key))
    st.caption("The measurement times big matrix multiplications in the precision runs train in, in a process of "
               "its own: the best case for the hardware, a ceiling a model can approach but not reach.")


@st.fragment(run_every=POLL_SECONDS)
def _gpu_peak_measuring(device: str, key: str) -> None:
    """While the background probe runs: say so, and once it has ended, one full rerun shows what it found."""
    if not peak_store.measuring(device):
        st.rerun(scope="app")
    st.caption("Measuring this GPU's peak in a process of its own (big matrix multiplications, a few seconds); "
               "the utilisation appears when it is done.")
    st.button("Measure this GPU's peak", key=f"{key}-measure", icon=":material/speed:", disabled=True)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.flops:flops_per_token", "engine.cost.flops:run_compute")


def render(params: CostMeterParams, key: str) -> bool:
    """Returns True once the learner's run has ended: the card's text discusses its final numbers."""
    me = session.learner()
    run = run_view.load(me.id, params.run_key)
    if run is None:
        st.info("No training run yet: this meter reads the run you train on lesson 7's card **Train your model**. "
                "Train one there, then come back.", icon=":material/model_training:")
        if (page := page_links.page_for(TRAINING_LESSON)) is not None:
            st.page_link(page, label="Go to lesson 7", icon=":material/arrow_back:")
        return False
    if run.active:
        run_view.polled_by_page(run)
        _live_meter(me.id, params.run_key, params.utilisation)
    else:
        draw_meter(run, params.utilisation)
    _peak_controls(run_compute.peak_device(run), key)
    return not run.active

