"""Lesson 9's report card: one of the learner's ended runs on one page (settings, device, loss curves, samples, steps,
tokens, FLOPs, achieved FLOP/s, what it would cost elsewhere), downloadable as Markdown or HTML, and set beside
another of their runs.

Everything shown comes from `engine.cost.report` and its tables (`report_tables`, the same ones the downloads are
written from, so the page and the files agree to the digit). Only runs that have ended are offered: a card is a record of a run, and a training run's
numbers still move (lesson 9's cost meter watches a live one). Nothing here polls. Labels are learner text and are
shown as plain text (`escape_md`, selectbox options, dataframe cells); samples go through `st.code`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from course.widgets import ReportCardParams
from engine import number_format
from engine.cost import peak as peak_store
from engine.cost import report, report_files, report_format, report_tables
from engine.load import checkpoint
from ui import page_links, private_files, run_compute, run_status, run_view, session
from ui.live_chart import Curve, draw, loss_chart_spec
from ui.run_view import RunView
from ui.text import escape_md

TRAINING_LESSON = "training-loop"  # lesson 7, where the learner trains their run


def _stamp(run_dir: str) -> tuple[float, ...]:
    out = []
    for name in (checkpoint.SUMMARY, checkpoint.METRICS, checkpoint.CONFIG):
        try:
            out.append((Path(run_dir) / name).stat().st_mtime)
        except OSError:
            out.append(0.0)
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _cached_report(run_dir: str, label: str, utilisation: float, peak: float | None,
                   stamp: tuple[float, ...], owner: str | None) -> report.RunReport:
    """Built once per folder state (`stamp`), utilisation, peak and asker: a rerun redraws without re-reading
    files, and the owner check is part of what is cached, never skipped by it."""
    return report.report_from_folder(run_dir, label=label, utilisation=utilisation, peak_flops_per_s=peak,
                                     owner=owner)


def build(run: RunView, utilisation: float, owner: str | None) -> report.RunReport:
    """The run's report, with this machine's peak when the learner has measured it (lesson 9's cost meter).
    `owner`: the learner asking (PermissionError for another's run); None on the instructor's page."""
    kept = peak_store.measured_peak(run_compute.peak_device(run))
    return _cached_report(run.run_dir, run.label or run.run_key, utilisation,
                          None if kept is None else kept.flops_per_s, _stamp(run.run_dir), owner)


def run_title(run: RunView) -> str:
    """How a run is named in the pickers (plain text: a selectbox shows no Markdown).

    >>> run_title(RunView("main", "r", "d", "finished", [{"step": 1200}], label="lesson run"))
    'lesson run (main) · ✅ Finished · 1,200 steps'
    """
    return f"{run.label or run.run_key} ({run.run_key}) · {run_status.label(run.status)} · {run.step:,} steps"


def _table(t: report_tables.Table, key: str) -> None:
    st.markdown(f"**{escape_md(t.title)}**")
    if t.note:
        st.caption(escape_md(t.note))
    columns = [c or "what" for c in t.columns]
    st.dataframe([dict(zip(columns, row, strict=True)) for row in t.rows], hide_index=True, key=key)


def _chart(curves: list[Curve], key: str, alt: str) -> None:
    draw(loss_chart_spec(curves, y_title="loss"), key=key, alt=alt, height=300)


def _curves(r: report.RunReport, prefix: str = "") -> list[Curve]:
    return [Curve(f"{prefix}training loss (per batch)", r.train_curve),
            Curve(f"{prefix}validation loss", [(e.step, e.val_loss) for e in r.evaluations], bold=True)]


def _downloads(markdown: str, page: str, name: str, key: str) -> None:
    left, right = st.columns(2)
    private_files.download_button("Download as Markdown", data=markdown, file_name=f"{name}.md",
                                  mime="text/markdown", where=left, icon=":material/download:", key=f"{key}-md",
                                  on_click="ignore")
    private_files.download_button("Download as HTML", data=page, file_name=f"{name}.html", mime="text/html",
                                  where=right, icon=":material/download:", key=f"{key}-html", on_click="ignore")


def _headline(r: report.RunReport) -> None:
    """Six numbers in two rows, short enough for a narrow column (SI prefixes; the exact ones are in the table)."""
    top, bottom = st.columns(3), st.columns(3)
    top[0].metric("final validation loss", number_format.loss(r.final_val_loss, report_format.LOSS_DIGITS))
    top[1].metric("steps", number_format.count(r.steps))
    top[2].metric("tokens", number_format.si(r.tokens, "").strip(), help=f"{number_format.count(r.tokens)} tokens")
    bottom[0].metric("elapsed", number_format.duration(r.elapsed_s))
    bottom[1].metric("training FLOPs", number_format.si(r.compute.flops, "").strip(),
                     help=f"{number_format.count(r.flops.total)} FLOPs per token × {number_format.count(r.tokens)} tokens")
    bottom[2].metric("achieved FLOP/s", number_format.si(r.compute.achieved_flops_per_s, "").strip(),
                     help="Model FLOPs per token × the training steps' token rate"
                     + ("" if r.compute.mfu is None else f": {number_format.percent(r.compute.mfu)} of this machine's "
                        "measured peak"))


def show_card(run: RunView, utilisation: float, key: str, owner: str | None) -> report.RunReport:
    """One run's card on the page, with its two downloads (`owner` as for `build`)."""
    r = build(run, utilisation, owner)
    st.markdown(f"**{escape_md(r.label)}** · {run_status.label(r.status)} · {escape_md(r.device)} · {r.precision}")
    if r.message:
        st.caption(escape_md(r.message))
    _headline(r)
    _chart(_curves(r), f"{key}-chart", f"Loss curves of {r.label}")
    tables = report_tables.card_tables(r)
    _table(tables[0], f"{key}-numbers")
    with st.expander("Evaluations, cost elsewhere and every setting"):
        for i, t in enumerate(tables[1:], start=1):
            _table(t, f"{key}-table-{i}")
    with st.expander(f"Samples ({len(r.samples)})"):
        for step, text in r.samples:
            st.caption(f"Step {step:,}")
            st.code(text, language=None, wrap_lines=True)
    _downloads(report_files.to_markdown(r), report_files.to_html(r), f"report-card-{run.run_key}", key)
    return r


def show_comparison(a: report.RunReport, b: report.RunReport, names: tuple[str, str], key: str) -> None:
    """Two runs side by side: both curves on one chart, one table per topic with a difference column."""
    _chart(_curves(a, "A ") + _curves(b, "B "), f"{key}-chart", f"Loss curves of {a.label} and {b.label}")
    tables = report_tables.compare_tables(a, b)
    _table(tables[0], f"{key}-numbers")
    with st.expander("Evaluations, cost elsewhere and every setting, side by side"):
        for i, t in enumerate(tables[1:], start=1):
            _table(t, f"{key}-table-{i}")
    _downloads(report_files.compare_markdown(a, b), report_files.compare_html(a, b), f"report-compare-{names[0]}-{names[1]}",
               key)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.report:report_from_folder",)


def render(params: ReportCardParams, key: str) -> bool:
    """Returns False while the learner has no ended run (the card's text is about their own numbers)."""
    me = session.learner()
    runs = {r.run_key: r for r in run_view.learner_runs(me.id) if not r.active and r.metrics}
    if not runs:
        training = any(r.active for r in run_view.learner_runs(me.id))
        st.info("Your run is still training: its report card appears here once it ends." if training else
                "No finished run yet: a report card needs a run that has ended. Train one on lesson 7's card "
                "**Train your model**, then come back.", icon=":material/model_training:")
        if not training and (page := page_links.page_for(TRAINING_LESSON)) is not None:
            st.page_link(page, label="Go to lesson 7", icon=":material/arrow_back:")
        return False
    keys = list(runs)
    chosen = st.selectbox("Run", keys, index=keys.index(params.run_key) if params.run_key in keys else 0,
                          format_func=lambda k: run_title(runs[k]), key=f"{key}-run")
    utilisation = st.slider("Assumed utilisation of the chips it is priced on", 10, 60, 40, step=5, format="%d%%",
                            key=f"{key}-utilisation",
                            help="Large training runs keep 30-50% of a chip's peak busy (PaLM reported 46%).") / 100
    try:
        a = show_card(runs[chosen], utilisation, f"{key}-card", str(me.id))
    except (ValueError, PermissionError) as err:  # a folder that does not say what model it trained (hand-copied, very old)
        st.warning(f"This run's folder cannot be read as a report card: {err}", icon=":material/warning:")
        return True
    if not params.compare:
        return True
    others = [k for k in keys if k != chosen]
    st.markdown("**Side by side with another run**")
    if not others:
        st.caption("Train another run (with a setting changed) to set the two side by side here.")
        return True
    other = st.selectbox("Compare with", others, format_func=lambda k: run_title(runs[k]), key=f"{key}-other")
    try:
        b = build(runs[other], utilisation, str(me.id))
    except (ValueError, PermissionError) as err:
        st.warning(f"That run's folder cannot be read as a report card: {err}", icon=":material/warning:")
        return True
    show_comparison(a, b, (chosen, other), f"{key}-compare")
    return True
