"""A fine-tune on a page, shared by the cards that start one from the learner's lesson-7 model (lesson 10's
fine-tune, lesson 11's supervised fine-tune and its LoRA twin, the chat template and the chat box): which model it
starts from (`pick_source`: the learner's ended run, else the course's reference model) and how its two losses
are drawn (the new text's and the one the model learned first: chart, headline, tiles, caption).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from engine.extract.bundled import entry
from engine.load import checkpoint
from engine.load.reference import reference_run_dir
from engine.number_format import clock, loss
from engine.runs.snapshot import saved_step
from engine.train.finetune import loss_shift
from engine.train.status import RunStatus
from ui import live_chart, run_panel, run_status, run_view, session
from ui.run_view import RunView

ORIGINAL_CORPUS = "tinyshakespeare"  # what the reference model and the lesson-7 run (its card names it) learned
_SOURCE_STATUSES = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.INTERRUPTED)  # ended, with usable weights
@dataclass(frozen=True)
class Source:
    """The model a fine-tune starts from: the learner's ended lesson-7 run, or the reference model."""

    run_dir: str
    own: bool  # the learner's own run (else data/reference/)
    step: int  # the step its checkpoint holds
    config: dict[str, Any]  # its training config, as saved (for its learning rates)
    original_corpus: str = ORIGINAL_CORPUS


def pick_source(learner_id: int, source_run_key: str) -> tuple[Source | None, str]:
    """(source, a sentence saying which model and why). None while the learner's own run is still training: the
    fine-tune waits for it rather than quietly starting from another model."""
    own = run_view.load(learner_id, source_run_key)
    if own is not None and own.active:
        return None, ("Your lesson-7 model is still training. When it has ended, the fine-tune starts from it "
                      "(Start waits until then).")
    if own is not None and own.status in _SOURCE_STATUSES and (Path(own.run_dir) / checkpoint.CKPT).is_file():
        step = own.checkpoint_step if own.checkpoint_step is not None else own.step
        return (Source(own.run_dir, True, step, dict(own.config)),
                f"Starting from **your own model** from lesson 7 (its weights at step {step:,}).")
    ref = reference_run_dir()
    source = Source(str(ref), False, saved_step(ref) or 0, _reference_config(str(ref)))
    why = ("You have no trained model from lesson 7 yet" if own is None else
           "Your lesson-7 run kept no usable weights (it " + run_status.label(own.status).split(" ", 1)[-1].lower()
           + ")")
    return source, (f"{why}, so this starts from **the course's reference model**: the same small GPT, trained "
                    f"on Tiny Shakespeare for {source.step:,} steps.")


@st.cache_data(show_spinner=False, max_entries=4)
def _reference_config(run_dir: str) -> dict[str, Any]:
    return dict(checkpoint.read_checkpoint(run_dir).get("train_config") or {})


def ckpt_stamp(run_dir: str) -> float:
    try:
        return (Path(run_dir) / checkpoint.CKPT).stat().st_mtime
    except OSError:
        return 0.0


def corpus_title(corpus: str) -> str:
    return entry(corpus).title


def char_name(ch: str) -> str:
    """A character as Markdown shows it: in a code span (so `_` or `*` stay themselves instead of turning into
    italics, and `"` reads better than in quotes), invisible ones named.

    >>> char_name("_"), char_name("`"), char_name("\\t")
    ('`_`', '`` ` ``', 'tab')
    """
    names = {"\t": "tab", "\n": "new line", " ": "space", "\r": "carriage return"}
    if ch in names:
        return names[ch]
    if not ch.isprintable():
        return repr(ch)
    return "`` ` ``" if ch == "`" else f"`{ch}`"


def chart_spec(run: RunView, new_title: str, original_title: str, vocab_size: int | None) -> dict:
    """Both validation curves of a fine-tune as an ECharts option (ui.live_chart, updated in place while it
    trains): the new corpus's loss, and the loss on the corpus the model learned first."""
    curves = [live_chart.Curve(f"new text: {new_title}", run.evals, bold=True),
              live_chart.Curve(f"learned first: {original_title}", run.evals_original, bold=True)]
    values = [v for _, v in run.evals + run.evals_original if math.isfinite(v)]
    guides = []
    top = max(values) * 1.1 if values else None
    if vocab_size:
        guess = math.log(vocab_size)
        guides = [(guess, f"random guessing: ln {vocab_size} = {guess:.2f}")]
        top = max(top or 0.0, guess * 1.1)
    top = math.ceil(top) if top else None  # a whole number at the top of the axis, not 5.6
    return live_chart.loss_chart_spec(curves, y_title="validation loss (nats per token)", guides=guides, y_max=top)


def numbers_line(run: RunView, new_title: str, original_title: str) -> str:
    """The live headline: step, the newest loss on each corpus, time left.

    >>> numbers_line(RunView("finetune", "r", "d", "running", [{"step": 0, "val_loss": 5.1,
    ...              "val_loss_original": 1.6}], eta_s=30.0), "Code", "Plays")
    'Step **0** · loss on Code **5.100** · on Plays **1.600** · **0:30** left'
    """
    shift = loss_shift(run.metrics)
    return (f"Step **{run.step:,}** · loss on {new_title} **{loss(shift.new_after)}** · on {original_title} "
            f"**{loss(shift.original_after)}** · **{clock(run.eta_s)}** left")


def shift_sentence(run: RunView, new_title: str, original_title: str) -> str:
    """An ended fine-tune's two losses, start and end, in words (the numbers are the run's, from loss_shift).

    >>> shift_sentence(RunView("f", "r", "d", "finished", [{"step": 0, "val_loss": 5.1, "val_loss_original": 1.6},
    ...                {"step": 300, "val_loss": 2.0, "val_loss_original": 2.3}]), "Code", "Plays")
    'On Code the loss went from **5.100** to **2.000**; on Plays, the text it learned first, from **1.600** to **2.300**: learning the new text cost some of the old (forgetting).'
    """
    s = loss_shift(run.metrics)
    if None in (s.new_before, s.new_after, s.original_before, s.original_after):
        return ""
    if s.original_after > s.original_before + 0.01:
        verdict = "learning the new text cost some of the old (forgetting)."
    elif s.original_after < s.original_before - 0.01:
        verdict = "this time the old text's loss even fell a little."
    else:
        verdict = "the old text's loss held."
    return (f"On {new_title} the loss went from **{s.new_before:.3f}** to **{s.new_after:.3f}**; on "
            f"{original_title}, the text it learned first, from **{s.original_before:.3f}** to "
            f"**{s.original_after:.3f}**: {verdict}")


def status_line(run: RunView) -> str:
    """The run's status, where it trains and what fitting its text replaced, in one caption. Only the first
    sentence of the device sentence: the rest are the engine's notes, the replaced characters among them, which
    this line says in its own short words (the full sentence is the caption's tooltip).

    >>> status_line(RunView("f", "r", "d", "running", device_sentence="Training on CPU, 2 threads. Note.",
    ...                     params=1000, finetune={"replaced_chars": 12, "replacement": "?"}))
    '🟢 Running · Training on CPU, 2 threads · 1,000 parameters · 12 characters of the new text became `?`'
    """
    where = (run.device_sentence or run_panel.device_sentence()).split(". ")[0].rstrip(".")
    parts = [run_status.label(run.status), where]
    if run.params:
        parts.append(f"{run.params:,} parameters")
    info = run.finetune or {}
    if info.get("replaced_chars") is not None:
        parts.append(f"{info['replaced_chars']:,} characters of the new text became {char_name(info['replacement'])}"
                     if info["replaced_chars"] else "no character of the new text needed replacing")
    return " · ".join(parts)


def draw_result(run: RunView, new_title: str, original_title: str) -> None:
    """An ended fine-tune's two losses, start and end, as tiles, and the same in a sentence."""
    s = loss_shift(run.metrics)
    a, b = st.columns(2)
    for col, label, before, after in ((a, f"Loss on the new text, {new_title}", s.new_before, s.new_after),
                                      (b, f"Loss on the text it learned first, {original_title}",
                                       s.original_before, s.original_after)):
        change = after - before if None not in (before, after) else None
        delta = None if change is None else f"{change:+.3f} since step 0" if abs(change) >= 5e-4 else "no change"
        col.metric(label, loss(after), delta=delta, delta_color="inverse" if delta != "no change" else "off")
    if sentence := shift_sentence(run, new_title, original_title):
        st.markdown(sentence)


def stop_run_key(run_key: str) -> None:
    """A Stop button's callback: stop the learner's run under `run_key`, if they have one."""
    me = session.learner().id
    run = run_view.load(me, run_key)
    if run is not None:
        run_view.stop(run, me)


def start_stop_buttons(label: str, key: str, run_key: str, run: RunView | None, can_start: bool,
                       on_start: Callable[..., None], args: tuple) -> None:
    """A fine-tune card's Start and Stop, side by side, and the queue's refusal when there was one. Start waits
    while any of the learner's runs trains (one at a time)."""
    busy = bool(run_view.active_runs(session.learner().id))
    left, right = st.columns([1, 1])
    left.button(label, key=f"{key}-start", type="primary", icon=":material/play_arrow:", disabled=busy or not can_start,
                on_click=on_start, args=args, width="stretch",
                help="Only one run trains at a time: Start waits while any of your runs is training." if busy else None)
    right.button("Stop", key=f"{key}-stop", icon=":material/stop:", disabled=run is None or not run.active,
                 on_click=stop_run_key, args=(run_key,), width="stretch")
    run_panel.queue_full_notice(run_key)
