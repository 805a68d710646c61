"""Train a real GPT: a few safe knobs, Start/Stop, and a live view that polls the background run every second.

The run lives in the engine's run manager (a training process of its own), never in this script: a rerun or a page
switch does not restart or block it. The live part is a fragment (`st.fragment(run_every=...)`), so only the
numbers and the chart redraw each second while the rest of the page, knobs included, stays put. Each poll is also
the run's heartbeat; a run nobody watches for five minutes stops itself and saves. The live view is kept small on
purpose: the browser drawing it shares the machine with the training (docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import replace

import streamlit as st
import torch

from course.widgets import TrainRunParams
from engine.config import PRESETS, TrainConfig
from engine.device import predicted_sentence
from engine.tokenization import Tokenizer
from ui import learner_corpus, live_chart, run_status, run_view, session
from ui.run_view import RunView

POLL_SECONDS = 1.0  # the chart and numbers update every second ...
SAMPLE_POLL_SECONDS = 5.0  # ... the samples, which change every ~200 steps, less often
MAX_CHART_POINTS = 150
WIDTHS = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
DIVERGE_LR = 5.0  # far above anything sane for Adam: the loss explodes within a few dozen steps


@st.cache_data(show_spinner=False, max_entries=4)
def _vocab_size(corpus: str) -> int:
    return len(set(learner_corpus.bundled_text(corpus)))


@st.cache_resource(show_spinner=False)
def _device_sentence() -> str:
    """What a run started now would train on. Predicted, not chosen: choosing configures torch (thread count,
    a bf16 speed probe) in the web server, which never trains; the training process chooses for itself."""
    return predicted_sentence()


def presets_available() -> list[str]:
    names = ["tiny", "lesson"]
    if torch.cuda.is_available():
        names.append("gpu")
    return names


def build_config(params: TrainRunParams, preset: str, n_layer: int, n_embd: int, lr: float, budget: int) -> TrainConfig:
    """The preset with the learner's knobs applied. Muon's rate moves in proportion to the Adam rate they chose."""
    base = PRESETS[preset]
    n_head = base.n_head if n_embd % base.n_head == 0 else 1
    # Evaluate at least every 50 steps: the validation curve is what the lesson is about (~2-3 s of a 60 s run).
    cfg = replace(base, n_layer=n_layer, n_embd=n_embd, n_head=n_head, lr=lr, muon_lr=base.muon_lr * lr / base.lr,
                  eval_interval=min(base.eval_interval, 50))
    if base.max_steps is None:  # time-bounded presets take the learner's budget
        cfg = replace(cfg, time_budget=float(budget))
    return cfg


def diverge_config(preset: str) -> TrainConfig:
    """A run with a learning rate so high the loss blows up: plain AdamW, no clipping to rescue it."""
    base = PRESETS[preset]
    return replace(base, optimizer="adamw", lr=DIVERGE_LR, grad_clip=0.0, warmup_steps=1,
                   max_steps=300, time_budget=None, eval_interval=10, sample_interval=50)


# ------------------------------------------------------------------ drawing a run


def thin_curve(steps: list[int], values: list[float], max_points: int = MAX_CHART_POINTS) -> tuple[list, list]:
    """At most `max_points` points, averaging neighbours: the chart is redrawn every second in the learner's
    browser, on the same cores that train, so it must stay cheap. The last point is always the newest value.

    >>> thin_curve([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], max_points=2)
    ([1, 3], [3.5, 1.5])
    """
    if len(steps) <= max_points:
        return steps, values
    size = math.ceil(len(steps) / max_points)
    xs, ys = [], []
    for i in range(0, len(steps), size):
        chunk = [v for v in values[i:i + size] if math.isfinite(v)]
        xs.append(steps[min(i + size, len(steps)) - 1])
        ys.append(sum(chunk) / len(chunk) if chunk else float("nan"))
    return xs, ys


def loss_chart(run: RunView, vocab_size: int) -> dict:
    """The run's loss curves as an ECharts option (ui.live_chart): the noisy per-batch training loss, the
    validation estimates, and the line of random guessing the run starts from."""
    steps = [r["step"] for r in run.metrics if r.get("train_loss") is not None]
    train = [r["train_loss"] for r in run.metrics if r.get("train_loss") is not None]
    steps, train = thin_curve(steps, train)
    evals = run.evals
    guess = math.log(vocab_size)
    finite = [v for v in train + [v for _, v in evals] if math.isfinite(v)]
    diverging = bool(finite) and max(finite) > 3 * guess  # a log axis shows the explosion instead of clipping it
    top = max([guess * 1.15] + [v * 1.05 for v in finite[:3]]) if finite else guess * 1.2
    return live_chart.loss_chart_spec(
        [live_chart.Curve("train loss (one batch)", list(zip(steps, train, strict=True))),
         live_chart.Curve("validation loss", evals, bold=True)],
        y_title="loss (nats per token)", guide=(guess, f"random guessing: ln {vocab_size} = {guess:.2f}"),
        log_axis=diverging, y_max=None if diverging else top)


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def numbers_line(run: RunView) -> str:
    """A training run's headline numbers as one Markdown line. One element, not four metric tiles: it is redrawn
    every second in a browser that shares the training machine's cores, and each element costs a little of each
    redraw. (An ended run, drawn once, gets the tiles: result_tiles.)

    >>> numbers_line(RunView("main", "r", "d", "running", [{"step": 0, "val_loss": 4.2}], [], eta_s=60.0))
    'Step **0** · validation loss **4.200** · – tokens/s · **1:00** left'
    """
    parts = [f"Step **{run.step:,}**"]
    val, start = run.final_val_loss, run.start_val_loss
    if val is not None and math.isfinite(val):
        since = f" ({val - start:+.2f} since step 0)" if len(run.evals) > 1 and start is not None else ""
        parts.append(f"validation loss **{val:.3f}**{since}")
    else:
        parts.append("validation loss –")
    tps = run.tokens_per_s
    parts.append(f"**{tps:,.0f}** tokens/s" if tps else "– tokens/s")
    parts.append(f"**{_fmt_eta(run.eta_s)}** left")
    return " · ".join(parts)


def result_tiles(run: RunView) -> None:
    """An ended run's headline numbers as metric tiles: drawn once, so they can afford to be big."""
    a, b, c, d = st.columns(4)
    a.metric("Steps", f"{run.step:,}")
    val, start = run.final_val_loss, run.start_val_loss
    finite = val is not None and math.isfinite(val)
    delta = f"{val - start:+.2f} since step 0" if finite and len(run.evals) > 1 and start is not None else None
    b.metric("Validation loss", f"{val:.3f}" if finite else "–", delta=delta, delta_color="inverse")
    tps = run.tokens_per_s
    c.metric("Tokens / second", f"{tps:,.0f}" if tps else "–")
    elapsed = run.metrics[-1].get("elapsed_s")
    d.metric("Training time", _fmt_eta(elapsed) if elapsed is not None else "–")


def draw_run(run: RunView, vocab_size: int, key: str) -> None:
    if run.status == "queued":
        st.info(f"Waiting in line: position **{run.queue_position}**. Runs share this machine one at a time so "
                "each gets all its cores; yours starts as soon as the one ahead finishes.", icon=":material/hourglass:")
    sentence = run.device_sentence or _device_sentence()
    gpu = f" · on GPU {run.gpu.removeprefix('cuda:')}" if run.gpu and run.gpu not in sentence else ""
    st.caption(f"{run_status.label(run.status)} · {sentence}{gpu}"
               + (f" · {run.params:,} parameters" if run.params else ""))
    if run.status == "running" and not run.metrics:
        st.markdown("Starting: the training process is building the model and measuring its first loss...")
    if run.metrics and run.active:
        st.markdown(numbers_line(run))
    elif run.metrics:
        result_tiles(run)
    if run.metrics:
        live_chart.draw(loss_chart(run, vocab_size), key=f"{key}-chart",
                        alt="Training and validation loss of this run, step by step")
    if run.status == "finished":
        st.success(run.message or "Finished.", icon=":material/check_circle:")
    elif run.status in ("diverged", "failed") or (run.status == "interrupted" and not run.resumable):
        st.error(run.message or "The run stopped.", icon=":material/warning:")
    elif run.status in ("stopped", "interrupted"):
        st.warning(run.message or "Stopped.", icon=":material/stop_circle:")


def draw_samples(run: RunView) -> None:
    if not run.samples:
        return
    step, text = run.samples[-1]
    st.markdown(f"**What the model writes at step {step:,}:**")
    st.code(text, language=None, wrap_lines=True)
    if len(run.samples) > 1:
        with st.expander(f"All {len(run.samples)} samples, from gibberish to words"):
            for s, t in run.samples:
                st.caption(f"step {s:,}")
                st.code(t, language=None, wrap_lines=True)


@st.fragment(run_every=SAMPLE_POLL_SECONDS)
def _live_samples(learner_id: int, run_key: str) -> None:
    """Samples appear every ~200 steps: redrawing them every second would only cost the training time."""
    run = run_view.load(learner_id, run_key)
    if run is not None:
        draw_samples(run)


@st.fragment(run_every=POLL_SECONDS)
def _live_run(learner_id: int, run_key: str, vocab_size: int, key: str) -> None:
    """Redrawn every second on its own; once the run has ended, asks for one full rerun, which draws the run
    without polling (and enables Start again)."""
    run = run_view.load(learner_id, run_key)
    if run is None:
        return
    run_view.heartbeat(run)
    draw_run(run, vocab_size, key)
    if not run.active:
        st.rerun(scope="app")


def show_run(run: RunView, vocab_size: int, key: str) -> None:
    """A run and its samples: polled live while it is queued or training, drawn once when it has ended (an
    ended run does not change, and a fragment polling it would only cost the browser, and so training, time)."""
    if run.active:
        run_view.polled_by_page(run)
        learner_id = session.learner().id
        _live_run(learner_id, run.run_key, vocab_size, key)
        _live_samples(learner_id, run.run_key)
    else:
        draw_run(run, vocab_size, key)
        draw_samples(run)


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
    run_view.stop(run)


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


def render(params: TrainRunParams, key: str) -> bool:
    """Returns True once the learner has a run, so the card's `after` text (which discusses results) shows then."""
    me = session.learner()
    text, tokenizer, what = _training_data(params, me.id)
    if params.tokenizer == "learner_bpe" and tokenizer is None:
        st.info("This run uses **your own BPE tokenizer**: train one on the card before this, then come back.",
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
        n_layer = left.slider("Layers", 1, params.max_layers, min(base.n_layer, params.max_layers), key=f"{key}-layers",
                              disabled=busy or "n_layer" not in knobs, help="How many transformer blocks are stacked.")
        widths = [w for w in WIDTHS if w <= params.max_width]
        width = min(widths, key=lambda w: abs(w - base.n_embd))
        n_embd = right.select_slider("Width (embedding size)", widths, value=width, key=f"{key}-width",
                                     disabled=busy or "n_embd" not in knobs,
                                     help="How many numbers represent each token inside the model.")
        rates = sorted({params.min_learning_rate, params.max_learning_rate, base.lr,
                        *[r for r in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
                          if params.min_learning_rate <= r <= params.max_learning_rate]})
        lr = left.select_slider("Learning rate", rates, value=min(rates, key=lambda r: abs(r - base.lr)),
                                format_func=lambda r: f"{r:g}", key=f"{key}-lr",
                                disabled=busy or "learning_rate" not in knobs,
                                help="How big a step each update takes. Too small: slow. Too big: it blows up.")
        budget = params.time_budget
        if base.max_steps is None:
            budget = right.slider("Time budget (seconds)", 10, params.max_time_budget, params.time_budget, step=5,
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
    if params.show_diverge_button:
        c3.button(f"Too high learning rate ({DIVERGE_LR:g}): watch it diverge", key=f"{key}-diverge",
                  icon=":material/local_fire_department:", on_click=_start,
                  args=(params, key, "diverge", diverge_config(preset), "too-high learning rate"), width="stretch")

    if run is None:
        st.caption(f"{_device_sentence()}. Nothing trained yet: press Start and watch the loss.")
    else:
        show_run(run, vocab, f"{key}-{params.run_key}")

    demo = run_view.load(me.id, "diverge") if params.show_diverge_button else None
    if demo is not None:
        with st.expander("The too-high learning rate run", expanded=True, icon=":material/local_fire_department:"):
            show_run(demo, vocab, f"{key}-diverge")
    return run is not None
