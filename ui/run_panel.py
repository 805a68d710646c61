"""A training run drawn on a page: the live panel (a fragment polling the run every second: one caption, one line
of numbers and the chart; the samples every 5 s), or, once the run has ended, the same drawn once with its result.
One panel for every widget that starts a run (lesson 7's train_run, lesson 8's overfit_run, lesson 10's fine-tune),
so a run looks and behaves the same wherever it is watched; a `Panel` says only what a kind of run shows
differently. Why the live view is kept small: docs/architecture.md (the browser drawing it shares the machine with
the training)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from engine.device import predicted_sentence
from engine.number_format import clock, loss
from engine.train.status import RESUMABLE, RunStatus
from engine.transform.baseline import LANDMARKS_FILE, read_landmarks
from ui import live_chart, run_status, run_view, session
from ui.run_view import RunView

POLL_SECONDS = 1.0  # the chart and numbers update every second ...
SAMPLE_POLL_SECONDS = 5.0  # ... the samples, which change every ~200 steps, less often
MAX_CHART_POINTS = 150


@st.cache_resource(show_spinner=False)
def device_sentence() -> str:
    """What a run started now would train on. Predicted, not chosen: choosing configures torch (thread count,
    a bf16 speed probe) in the web server, which never trains; the training process chooses for itself."""
    return predicted_sentence()


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


@functools.lru_cache(maxsize=64)
def _landmarks(run_dir: str, stamp: float) -> tuple[tuple[float, str], ...]:
    """The run's counting-model lines (engine.transform.baseline), read again only when the file changes (`stamp`)."""
    return tuple(read_landmarks(run_dir))


def landmarks(run: RunView, vocab_size: int) -> list[tuple[float, str]]:
    """(loss, label) lines for the run's chart: random guessing, and, where the run saved them, what counting
    characters (or tokens) and pairs of them scores on the same validation text: the lines to beat."""
    path = Path(run.run_dir) / LANDMARKS_FILE
    try:
        saved = list(_landmarks(run.run_dir, path.stat().st_mtime))
    except OSError:
        saved = []
    guess = math.log(vocab_size)
    return saved or [(guess, f"random guessing: ln {vocab_size} = {guess:.2f}")]


def loss_chart(run: RunView, vocab_size: int) -> dict:
    """The run's loss curves as an ECharts option (ui.live_chart): the per-batch training loss (jagged: each step
    scores a different small batch), the validation estimates (smooth: the same held-out batches every time), and
    the landmark lines: random guessing, where the run starts, and the counting models it has to beat."""
    steps = [r["step"] for r in run.metrics if r.get("train_loss") is not None]
    train = [r["train_loss"] for r in run.metrics if r.get("train_loss") is not None]
    steps, train = thin_curve(steps, train)
    evals = run.evals
    guess = math.log(vocab_size)
    finite = [v for v in train + [v for _, v in evals] if math.isfinite(v)]
    diverging = bool(finite) and max(finite) > 3 * guess  # a log axis shows the explosion instead of clipping it
    top = max([guess * 1.15] + [v * 1.05 for v in finite[:3]]) if finite else guess * 1.2
    return live_chart.loss_chart_spec(
        [live_chart.Curve("training loss (each step's own batch)", list(zip(steps, train, strict=True))),
         live_chart.Curve("validation loss", evals, bold=True)],
        y_title="loss (nats per token)", guides=landmarks(run, vocab_size),
        log_axis=diverging, y_max=None if diverging else top)


def chart_summary(run: RunView, vocab_size: int) -> str:
    """The ended run's chart in one sentence, for a screen reader (the chart's alt text): where validation loss
    started and ended, and the dotted lines it is drawn against. A live chart keeps a fixed alt text, because the
    numbers line beside it already says the same in words every second.

    >>> run = RunView("main", "r", "/nonexistent", "finished", [{"step": 0, "val_loss": 4.2}, {"step": 90, "val_loss": 2.1}], [])
    >>> chart_summary(run, 65)
    'Loss chart: validation loss 4.200 at step 0, 2.100 at step 90. Dotted lines: random guessing: ln 65 = 4.17.'
    """
    evals = [(s, v) for s, v in run.evals if math.isfinite(v)]
    parts = ["Loss chart:"]
    if evals:
        (s0, v0), (s1, v1) = evals[0], evals[-1]
        parts.append(f"validation loss {loss(v0)} at step {s0:,}, {loss(v1)} at step {s1:,}.")
    lines = "; ".join(label for _, label in landmarks(run, vocab_size))
    return " ".join(parts + [f"Dotted lines: {lines}."])


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
        parts.append(f"validation loss **{loss(val)}**{since}")
    else:
        parts.append("validation loss –")
    tps = run.tokens_per_s
    parts.append(f"**{tps:,.0f}** tokens/s" if tps else "– tokens/s")
    parts.append(f"**{clock(run.eta_s)}** left")
    return " · ".join(parts)


def result_tiles(run: RunView) -> None:
    """An ended run's headline numbers as metric tiles: drawn once, so they can afford to be big."""
    a, b, c, d = st.columns(4)
    a.metric("Steps", f"{run.step:,}")
    val, start = run.final_val_loss, run.start_val_loss
    finite = val is not None and math.isfinite(val)
    delta = f"{val - start:+.2f} since step 0" if finite and len(run.evals) > 1 and start is not None else None
    b.metric("Validation loss", loss(val) if finite else "–", delta=delta, delta_color="inverse")
    tps = run.tokens_per_s
    c.metric("Tokens / second", f"{tps:,.0f}" if tps else "–")
    elapsed = run.metrics[-1].get("elapsed_s")
    d.metric("Training time", clock(elapsed))


@dataclass(frozen=True)
class Panel:
    """How one kind of run is drawn, where it differs from lesson 7's: its live numbers line, its result once
    ended, its chart (an ECharts option and its alt text), its samples, and its status caption. Everything else,
    the queue notice, the polling, the end message, is the same for every run."""

    numbers: Callable[[RunView], str]
    result: Callable[[RunView], None]
    chart: Callable[[RunView], tuple[dict, str] | None]
    samples: Callable[[RunView], None]
    caption: Callable[[RunView], str]
    starting: str = "Starting: the training process is building the model and measuring its first loss..."
    finished: Callable[[RunView], str] = lambda run: "Finished."


def status_caption(run: RunView) -> str:
    """The run's status, what it trains on (its GPU, where it has one of several) and its size, in one caption."""
    sentence = run.device_sentence or device_sentence()
    gpu = f" · on GPU {run.gpu.removeprefix('cuda:')}" if run.gpu and run.gpu not in sentence else ""
    return f"{run_status.label(run.status)} · {sentence}{gpu}" + (f" · {run.params:,} parameters" if run.params else "")


def training_panel(vocab_size: int) -> Panel:
    """A training run as lessons 7 and 8 show it: one loss chart against the counting models' lines."""

    def chart(run: RunView) -> tuple[dict, str]:
        alt = "Training and validation loss of this run, step by step" if run.active else chart_summary(run, vocab_size)
        return loss_chart(run, vocab_size), alt

    return Panel(numbers=numbers_line, result=result_tiles, chart=chart, samples=draw_samples, caption=status_caption)


def draw_run(run: RunView, panel: Panel, key: str) -> None:
    """The run as it stands: polled every second while it is active, drawn once when it has ended."""
    if run.status == RunStatus.QUEUED:
        st.info(waiting_text(run), icon=":material/hourglass:")
    st.caption(panel.caption(run), help=run.device_sentence or None)
    if run.status == RunStatus.RUNNING and not run.metrics:
        st.markdown(panel.starting)
    if run.metrics and run.active:
        st.markdown(panel.numbers(run))
    elif run.metrics:
        panel.result(run)
    if run.status == RunStatus.RUNNING and run.save_warning:
        st.warning(save_warning_text(run.save_warning), icon=":material/save:")
    if run.metrics and (chart := panel.chart(run)) is not None:
        spec, alt = chart
        live_chart.draw(spec, key=f"{key}-chart", alt=alt)
    if run.status == RunStatus.FINISHED:
        st.success(run.message or panel.finished(run), icon=":material/check_circle:")
    elif refusal := run_view.resume_refusal(run.run_key, run.run_id):  # instead of a message that offers Resume
        st.error(refusal, icon=":material/block:")
    elif run.status in (RunStatus.DIVERGED, RunStatus.FAILED) or (run.status == RunStatus.INTERRUPTED and not run.resumable):
        st.error(run.message or "The run stopped.", icon=":material/warning:")
    elif run.status in RESUMABLE:
        st.warning(run.message or "Stopped.", icon=":material/stop_circle:")


def waiting_text(run: RunView) -> str:
    """A waiting run's place in line, when it should start and why it waits (engine.runs.fair_queue's estimate)."""
    return (f"{run_status.waiting_sentence(run.queue_position, run.starts_in_s)} "
            f"{run_status.why_waiting(*run_view.pool_limits())}")


def queue_full_notice(*run_keys: str) -> None:
    """Where the learner pressed Start: why the queue refused it (they hold as many runs as they may), once. Nothing
    was replaced, so the run the card shows is still theirs. Each widget that starts runs draws this under its
    buttons, for the run keys they start."""
    messages: list[str] = []
    for run_key in run_keys:
        if (message := run_view.queue_refusal(run_key)) and message not in messages:
            messages.append(message)
        run_view.forget_queue_refusal(run_key)
    for message in messages:
        st.warning(f"**Not started.** {message}", icon=":material/group:")


def save_warning_text(message: str) -> str:
    """A mid-run save failure as the panel says it: the run trains on, and the last good checkpoint still stands.

    >>> save_warning_text("could not save: disk full (runs/a) at step 40; the run keeps training")
    '**Checkpoint not saved.** Could not save: disk full (runs/a) at step 40; the run keeps training'
    """
    return f"**Checkpoint not saved.** {message[:1].upper()}{message[1:]}"


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
def _live_samples(learner_id: int, run_key: str, panel: Panel) -> None:
    """Samples appear every ~200 steps: redrawing them every second would only cost the training time."""
    run = run_view.load(learner_id, run_key)
    if run is not None:
        panel.samples(run)


@st.fragment(run_every=POLL_SECONDS)
def _live_run(learner_id: int, run_key: str, panel: Panel, key: str) -> None:
    """Redrawn every second on its own, and the run's heartbeat; once the run has ended, asks for one full rerun,
    which draws the run without polling (and enables Start again)."""
    run = run_view.load(learner_id, run_key)
    if run is None:
        return
    run_view.heartbeat(run)
    draw_run(run, panel, key)
    if not run.active:
        st.rerun(scope="app")


def show_run(run: RunView, panel: Panel, key: str) -> None:
    """A run and its samples: polled live while it is queued or training, drawn once when it has ended (an
    ended run does not change, and a fragment polling it would only cost the browser, and so training, time)."""
    if run.active:
        run_view.polled_by_page(run)
        learner_id = session.learner().id
        _live_run(learner_id, run.run_key, panel, key)
        _live_samples(learner_id, run.run_key, panel)
    else:
        draw_run(run, panel, key)
        panel.samples(run)
