"""Lesson 9's scaling sweep: a ladder of model sizes (engine.cost.scaling.default_ladder) trained one after another on
the same text for the same number of tokens, their final validation losses against training compute on a log-log
chart, a power law fitted to them, its prediction for the next size up, and that size trained to check it.

Each rung is an ordinary run of the learner's (`ui.run_view.start` under the key `<run_key>-<i>`), so the sweep
survives page switches, reloads and restarts, and queues behind any other run like every run does. While any rung
is queued or training, one fragment polls them all each second (one table and the chart; the chart's figure only
changes when a rung finishes, so plotly does not rebuild it in between) and sends their heartbeats.
"""

from __future__ import annotations

import functools
import math

import plotly.graph_objects as go
import streamlit as st

from course.widgets import ScalingSweepParams
from engine.cost import scaling
from engine.cost.scaling import Rung, RungPoint, SweepView
from engine.extract.bundled import entry
from engine.train.config import TrainConfig
from engine.train.status import RunStatus
from engine.transform.tokenization import CharTokenizer
from ui import learner_corpus, run_panel, run_status, run_view, session
from ui.run_view import RunView

POLL_SECONDS = 1.0


def ladder() -> list[Rung]:
    """The sizes the sweep trains. A function of its own so tests can swap in a ladder that trains in seconds."""
    return scaling.default_ladder()


def run_keys(params: ScalingSweepParams, n: int) -> list[str]:
    """One run key per rung: `sweep-0`, `sweep-1`, ... (the sidebar groups them into one line).

    >>> run_keys(ScalingSweepParams(), 3)
    ['sweep-0', 'sweep-1', 'sweep-2']
    """
    return [f"{params.run_key}-{i}" for i in range(n)]


@st.cache_data(show_spinner=False, max_entries=8)
def _vocab_size(corpus: str) -> int:
    return CharTokenizer.from_text(learner_corpus.bundled_text(corpus)).vocab_size


def _runs(learner_id: int, params: ScalingSweepParams, rungs: list[Rung]) -> list[RunView | None]:
    return [run_view.load(learner_id, k) for k in run_keys(params, len(rungs))]


_SHAPE = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_steps", "lr")


def finished_as_planned(rung: Rung, run: RunView | None) -> bool:
    """The rung's run finished, with the size and budget the ladder asks for now (not an older ladder's)."""
    if run is None or run.status != RunStatus.FINISHED or not run.config:
        return False
    trained = TrainConfig.from_dict(run.config)
    return all(trained.to_dict()[f] == rung.config.to_dict()[f] for f in _SHAPE)


def _start(params: ScalingSweepParams, only_missing: bool = False) -> None:
    """Submit the rungs (the first trains, the others wait in the run manager's queue, smallest first, as one
    request of the learner's); with `only_missing`, only those that have not finished as planned (after a Stop,
    the rest of the sweep). If the queue refuses one, the rest are not asked for, and the card says why."""
    me = session.learner()
    text = learner_corpus.bundled_text(params.corpus)
    rungs = ladder()
    keys = run_keys(params, len(rungs))
    for key, rung in zip(keys, rungs, strict=True):
        if only_missing and finished_as_planned(rung, run_view.load(me.id, key)):
            continue
        if run_view.start(me.id, key, rung.config, text, label=f"{me.name} sweep: {rung.name}",
                          batch=f"sweep-{params.run_key}") is None:
            return


def _stop(params: ScalingSweepParams) -> None:
    """Stop every rung still queued or training (a queued one leaves the queue; a training one saves)."""
    me = session.learner().id
    for run in _runs(me, params, ladder()):
        if run is not None:
            run_view.stop(run, me)


def rung_point(rung: Rung, run: RunView | None, vocab_size: int) -> RungPoint:
    """A rung for the chart: its size and compute from the config it trained with, its loss once it finished.

    >>> rung = scaling.make_ladder([(1, 1, 16), (2, 2, 32)], scaling.LADDER_BASE)[0]
    >>> p = rung_point(rung, None, 65)
    >>> p.params, p.tokens, p.loss
    (5184, 1228800, None)
    """
    config = TrainConfig.from_dict(run.config) if run is not None and run.config else rung.config
    finished = run is not None and run.status == RunStatus.FINISHED and run.metrics
    tokens = int(run.metrics[-1].get("tokens") or 0) if finished else scaling.planned_tokens(config)
    loss = run.final_val_loss if finished else None
    return RungPoint(rung.name, scaling.rung_parameters(config, vocab_size), tokens,
                     scaling.rung_flops(config, vocab_size, tokens), loss, rung.is_verify)


def _status_cell(run: RunView | None, config: TrainConfig) -> str:
    if run is None:
        return "not started"
    if run.status == RunStatus.QUEUED:
        return f"⏳ {run_status.waiting_phrase(run.queue_position, run.starts_in_s)}"
    if run.status == RunStatus.RUNNING:
        total = config.max_steps or 0
        return f"🟢 training: step {run.step:,} of {total:,}" if run.metrics else "🟢 starting"
    return run_status.label(run.status)


def rung_table(rungs: list[Rung], runs: list[RunView | None], points: list[RungPoint]) -> str:
    """The ladder as one Markdown table (one element: it is redrawn every second while the sweep trains)."""
    lines = ["| size | parameters | tokens | training FLOPs | status | validation loss |",
             "|---|---:|---:|---:|---|---:|"]
    for rung, run, p in zip(rungs, runs, points, strict=True):
        name = f"{rung.name} (the check)" if rung.is_verify else rung.name
        loss = f"**{p.loss:.3f}**" if p.loss is not None and math.isfinite(p.loss) else "–"
        lines.append(f"| {name} | {p.params:,} | {p.tokens:,} | {p.flops:.2e} | {_status_cell(run, rung.config)} "
                     f"| {loss} |")
    return "\n".join(lines)


def sweep_chart(view: SweepView) -> go.Figure:
    """Loss against compute, both axes logarithmic: a power law is a straight line there, bending towards E."""
    fig = go.Figure()
    if view.curve:
        fig.add_trace(go.Scatter(x=[c for c, _ in view.curve], y=[v for _, v in view.curve], mode="lines",
                                 name="fitted power law", line={"dash": "dash"}, hoverinfo="skip"))
    if view.points:
        fig.add_trace(go.Scatter(
            x=[p.flops for p in view.points], y=[p.loss for p in view.points], mode="markers",
            name="sizes the law is fitted to", marker={"size": 11},
            text=[f"{p.name}<br>{p.params:,} parameters" for p in view.points],
            hovertemplate="%{text}<br>%{x:.2e} FLOPs<br>validation loss %{y:.3f}<extra></extra>"))
    if view.verify is not None and view.predicted is not None:
        fig.add_trace(go.Scatter(
            x=[view.verify.flops], y=[view.predicted], mode="markers", name="predicted for the next size",
            marker={"size": 14, "symbol": "circle-open", "line": {"width": 3}},
            hovertemplate="predicted %{y:.3f}<extra></extra>"))
    if view.verify is not None and view.verify.loss is not None:
        fig.add_trace(go.Scatter(
            x=[view.verify.flops], y=[view.verify.loss], mode="markers", name="measured: the checking run",
            marker={"size": 14, "symbol": "star"},
            hovertemplate=f"{view.verify.name}<br>measured %{{y:.3f}}<extra></extra>"))
    fig.update_layout(xaxis={"type": "log", "title": "training compute (FLOPs, log scale)"},
                      yaxis={"type": "log", "title": "final validation loss (log scale)"},
                      height=420, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def _explain(view: SweepView) -> None:
    fit = view.fit
    if fit is None:
        if (view.fit_problem or "").startswith("No power law"):
            st.warning(f"{view.fit_problem} A busy machine can leave one size with a loss that does not fit the "
                       "pattern: run the sweep again.", icon=":material/warning:")
        elif view.fit_problem:
            st.caption(view.fit_problem)
        return
    st.markdown(f"**The fitted law:** {fit.in_words()}.")
    if view.verify is not None and view.predicted is not None:
        if view.verify.loss is None:
            st.markdown(f"**Prediction** for {view.verify.name} ({view.verify.params:,} parameters, "
                        f"{view.verify.flops:.2e} FLOPs): validation loss **{view.predicted:.3f}**. "
                        "It trains last: watch whether the star lands on the circle.")
        else:
            st.markdown(f"**Predicted {view.predicted:.3f}, measured {view.verify.loss:.3f}**: the law was off "
                        f"by **{abs(view.error_pct):.1f}%** ({'higher' if view.error_pct > 0 else 'lower'} than "
                        f"predicted), for a model the law never saw, from {len(view.points)} smaller ones.")


@functools.lru_cache(maxsize=16)
def _sweep_view(points: tuple[RungPoint, ...]) -> SweepView:
    """The fit takes milliseconds, but the fragment asks every second while the check trains: fit once per result."""
    return scaling.sweep_view(points)


def draw(learner_id: int, params: ScalingSweepParams, key: str) -> tuple[list[RunView | None], SweepView]:
    """The table, the chart and the fit, as they stand now; returns the runs and the view."""
    rungs = ladder()
    runs = _runs(learner_id, params, rungs)
    vocab = _vocab_size(params.corpus)
    points = [rung_point(r, run, vocab) for r, run in zip(rungs, runs, strict=True)]
    view = _sweep_view(tuple(points))
    st.markdown(rung_table(rungs, runs, points))
    if view.points:
        st.plotly_chart(sweep_chart(view), key=f"{key}-chart", config={"displayModeBar": False})
    _explain(view)
    return runs, view


@st.fragment(run_every=POLL_SECONDS)
def _live(learner_id: int, params: ScalingSweepParams, key: str) -> None:
    """Redrawn every second while any rung is queued or training; heartbeats them all (a queued one too: the run
    manager drops a queued run nobody watches). Once the last has ended, one full rerun draws the sweep still."""
    runs, _ = draw(learner_id, params, key)
    for run in runs:
        if run is not None:
            run_view.heartbeat(run)
    if not any(run is not None and run.active for run in runs):
        st.rerun(scope="app")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.scaling:fit_power_law",)


def render(params: ScalingSweepParams, key: str) -> bool:
    me = session.learner()
    rungs = ladder()
    runs = _runs(me.id, params, rungs)
    busy = any(run is not None and run.active for run in runs)
    base = rungs[0].config
    st.caption(f"Training text: {entry(params.corpus).title} · {len(rungs)} sizes, each "
               f"{base.max_steps:,} steps of {base.batch_size} × {base.model.block_size} characters "
               f"({scaling.planned_tokens(base):,} tokens) · the last size is the check, left out of the fit · "
               "all of it takes a few minutes here.")
    c1, c2 = st.columns([2, 1])
    c1.button("Run the scaling sweep", key=f"{key}-start", type="primary", icon=":material/play_arrow:",
              disabled=busy, on_click=_start, args=(params,), width="stretch")
    c2.button("Stop", key=f"{key}-stop", icon=":material/stop:", disabled=not busy, on_click=_stop,
              args=(params,), width="stretch")
    run_panel.queue_full_notice(*run_keys(params, len(rungs)))
    if all(run is None for run in runs):
        st.caption("Nothing trained yet: press the button and watch the sizes finish one by one.")
        return False
    if busy:
        for run in runs:
            if run is not None and run.active:
                run_view.polled_by_page(run)
        _live(me.id, params, key)
        return False
    _, view = draw(me.id, params, key)
    missing = sum(not finished_as_planned(r, run) for r, run in zip(rungs, runs, strict=True))
    if missing:
        st.warning(f"Not every size finished ({missing} of {len(rungs)} missing), so the sweep is incomplete. "
                   "Train just the missing sizes, or run the whole sweep again.", icon=":material/stop_circle:")
        st.button(f"Train the {missing} missing size{'s' if missing > 1 else ''}", key=f"{key}-missing",
                  icon=":material/play_arrow:", on_click=_start, args=(params, True))
    return view.verify is not None and view.verify.loss is not None

