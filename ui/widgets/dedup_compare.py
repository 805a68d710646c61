"""Does removing duplicates help? Train two runs on the same budget, one with the duplicates and one without.

Both training texts have the same length and end with the same held-out validation text (see
`engine.extract.dedup.comparison_texts`), so the two validation curves are directly comparable. The runs go through the
run manager's queue like any other run: on a one-slot CPU the second waits for the first.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from course.widgets import DedupCompareParams
from engine.extract.dedup import ComparisonTexts, comparison_texts
from engine.number_format import loss
from engine.train.config import PRESETS
from engine.train.status import RunStatus
from engine.transform.tokenization import CharTokenizer
from ui import learner_corpus, live_chart, run_panel, run_status, run_view, session

RUNS = {"dedup-with": "with duplicates", "dedup-without": "duplicates removed"}
THRESHOLD = 0.8  # the comparison uses the engine's default threshold, whatever the lab's slider shows
EVAL_POINTS = 10  # validation estimates per timed run, however long its budget: every 2 s of a 20 s run
BATCH = "dedup"  # the two runs are one request in the class's queue


@st.cache_data(show_spinner="Preparing the two training texts...", max_entries=4)
def _texts(corpus_id: str, version: str, learner_id: int, options) -> ComparisonTexts:
    info = learner_corpus.chosen(learner_id)
    docs = learner_corpus.cleaned(learner_id, info, options).docs
    report = learner_corpus.deduped(learner_id, info, options, THRESHOLD)
    return comparison_texts(docs, report)


def _start_both(params: DedupCompareParams, texts: ComparisonTexts) -> None:
    me = session.learner()
    tokenizer = CharTokenizer.from_text(texts.with_duplicates + texts.without_duplicates)  # one vocabulary for both
    base = PRESETS[params.preset]
    # the tiny preset keeps its fixed length; time-bounded presets take the card's budget and evaluate more often
    # than their every 5 s (counted in seconds: the same number of points on any device)
    config = base if base.max_steps is not None else replace(base, time_budget=float(params.time_budget),
                                                                 eval_points=EVAL_POINTS)
    if run_view.start(me.id, "dedup-with", config, texts.with_duplicates, "with duplicates", tokenizer=tokenizer,
                      batch=BATCH) is None:
        return  # the queue refused: the second would be refused too, and the card says why
    run_view.start(me.id, "dedup-without", config, texts.without_duplicates, "duplicates removed", tokenizer=tokenizer,
                   batch=BATCH)


def comparison_chart(runs: dict[str, run_view.RunView]) -> dict:
    """Both runs' validation curves as an ECharts option (ui.live_chart: it redraws every second while they train)."""
    curves = [live_chart.Curve(f"validation loss, {RUNS[run_key]}", run.evals, bold=True)
              for run_key, run in runs.items()]
    return live_chart.loss_chart_spec(curves, y_title="validation loss (same held-out text)")


def epochs_read(tokens: int | None, train_chars: int) -> float | None:
    """How many times a run went through its training text: tokens trained on / training characters (one token per
    character). A short run on a CPU may read well under one epoch; on a GPU, or with a small upload, many.

    >>> epochs_read(400_000, 800_000), epochs_read(None, 800_000)
    (0.5, None)
    """
    return tokens / train_chars if tokens is not None and train_chars > 0 else None


def _runs(learner_id: int) -> dict[str, run_view.RunView]:
    return {k: r for k in RUNS if (r := run_view.load(learner_id, k)) is not None}


@st.fragment(run_every=1.0)
def _live(learner_id: int, key: str, train_chars: int) -> None:
    """Polled every second while a run is queued or training; once both have ended, one full rerun draws them
    without polling (and enables the button again)."""
    runs = _runs(learner_id)
    for run in runs.values():
        run_view.heartbeat(run)
    _draw(runs, key, train_chars)
    if not any(run.active for run in runs.values()):
        st.rerun(scope="app")


def _draw(runs: dict[str, run_view.RunView], key: str, train_chars: int) -> None:
    if not runs:
        return
    cols = st.columns(len(runs))
    for col, (run_key, run) in zip(cols, runs.items(), strict=True):
        state = run_status.label(run.status)
        if run.status == RunStatus.QUEUED:
            state = f"⏳ {run_status.waiting_phrase(run.queue_position, run.starts_in_s)}"
        val = run.final_val_loss
        col.metric(f"{RUNS[run_key].capitalize()}: {state}",
                   loss(val), help="latest validation loss")
        epochs = epochs_read(run.metrics[-1].get("tokens") if run.metrics else None, train_chars)
        if epochs is not None:
            col.caption(f"Read its training text **{epochs:.2f}** times so far")
    if any(r.evals for r in runs.values()):
        live_chart.draw(comparison_chart(runs), key=f"{key}-chart", height=320,
                        alt="Validation loss of the run with duplicates and the run without, step by step")
    done = [r for r in runs.values() if r.status == RunStatus.FINISHED and r.final_val_loss is not None]
    if len(done) == 2:
        with_dups, without = runs["dedup-with"].final_val_loss, runs["dedup-without"].final_val_loss
        diff = with_dups - without
        if abs(diff) < 0.01:
            st.info(f"The two runs ended within {abs(diff):.3f} of each other: on a run this short the duplicates "
                    "barely mattered. Longer runs see the repeated pages many more times.", icon=":material/balance:")
        elif diff > 0:
            st.success(f"Removing duplicates won by {diff:.3f} nats on the same unseen text: the same budget went "
                       "further when no step was spent re-reading copies.", icon=":material/trending_down:")
        else:
            st.warning(f"This time the run with duplicates ended {-diff:.3f} lower. Short runs are noisy; the effect "
                       "of duplicates grows with how often a model sees them.", icon=":material/help:")
    for run in runs.values():
        if run.status.ended and run.status != RunStatus.FINISHED and run.message:
            st.caption(f"{RUNS[run.run_key].capitalize()}: {run.message}")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.extract.dedup:comparison_texts",)


def render(params: DedupCompareParams, key: str) -> bool:
    me = session.learner()
    info = learner_corpus.chosen(me.id)
    options = learner_corpus.cleaning_options(me.id, info)
    try:
        texts = _texts(info.id, learner_corpus.version(info), me.id, options)
    except ValueError as err:
        st.warning(f"{err} Pick a bigger corpus (the web-crawl sample works well).", icon=":material/info:")
        return True
    st.caption(f"Each run trains on {texts.train_chars:,} characters of **{info.title}** (cleaned). In the first, "
               f"{texts.duplicate_share:.0%} of the documents are duplicates; the second has none. Both are scored on "
               f"the same {texts.val_chars:,} held-out characters.")
    runs = _runs(me.id)
    busy = any(run.active for run in runs.values())
    budget = f"2 × {params.time_budget} s" if PRESETS[params.preset].max_steps is None else "2 short runs"
    st.button(f"Train both ({budget})", key=f"{key}-start", type="primary", icon=":material/compare_arrows:",
              disabled=busy, on_click=_start_both, args=(params, texts))
    run_panel.queue_full_notice(*RUNS)
    if busy:
        for run in runs.values():
            run_view.polled_by_page(run)
        _live(me.id, key, texts.train_chars)
    else:
        _draw(runs, key, texts.train_chars)
    return bool(runs)
