"""A report card laid out: its tables (`card_tables` for one run, `compare_tables` for two side by side with a
difference column) and its loss curves as SVG charts (`loss_chart`, `compare_chart`).

A `Table` is titled text cells, the one shape every output draws: the report card widget shows them on the page,
and `report_files` writes them as Markdown and HTML. The numbers in the cells are written by `report_format`; what
they are is `report.RunReport`. Two runs are compared only when priced at the same utilisation, since the cost
table puts both runs' prices side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.cost.report import RunReport
from engine.cost.report_format import (
    LOSS_DIGITS,
    fmt,
    fmt_difference,
    fmt_value,
)
from engine.cost.svg_chart import Series, line_chart_svg
from engine.number_format import count, dollars, duration, loss, percent, si

COLOURS = ("#2563eb", "#ea580c")  # run A blue, run B orange: distinct on white, and for most colour-blind eyes


@dataclass(frozen=True)
class Table:
    """A titled table of text cells, the shape every output (Markdown, HTML, the page) draws."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def _headline(r: RunReport) -> list[tuple[str, str, Any]]:
    """(name, kind, value) rows: the run's own numbers, then its compute."""
    c = r.compute
    return [
        ("status", "text", r.status), ("device", "text", r.device), ("precision", "text", r.precision),
        ("tokenizer", "text", r.tokenizer), ("parameters", "int", r.parameters.total),
        ("parameters as the run counted them (no position embeddings, as nanoGPT)", "int", r.params_recorded),
        ("steps", "int", r.steps), ("tokens trained on", "int", r.tokens), ("elapsed", "duration", r.elapsed_s),
        ("validation loss at the start", "loss", r.start_loss),
        ("final validation loss", "loss", r.final_val_loss), ("final training loss", "loss", r.final_train_loss),
        ("tokens per second (wall clock, evaluations included)", "rate", r.tokens_per_s),
        ("tokens per second (training steps alone)", "rate", r.step_tokens_per_s),
        ("training FLOPs per token: dense (6 × non-embedding parameters)", "int", r.flops.dense),
        ("training FLOPs per token: output head (6 × width × vocabulary)", "int", r.flops.head),
        ("training FLOPs per token: attention (12 × layers × width × context)", "int", r.flops.attention),
        ("training FLOPs per token: total", "int", r.flops.total),
        ("total training FLOPs", "flops", c.flops),
        ("achieved FLOP/s (training steps)", "flops_rate", c.achieved_flops_per_s),
        ("average FLOP/s (wall clock)", "flops_rate", c.average_flops_per_s),
        ("this machine's peak FLOP/s (measured)", "flops_rate", c.peak_flops_per_s),
        ("model FLOPs utilisation (achieved / peak)", "percent", c.mfu),
    ]


def _config_items(r: RunReport) -> list[tuple[str, Any]]:
    """The training config, plus the model's shape where it adds to it (the vocabulary size comes from the
    tokenizer, so only the model knows it)."""
    model = [(f"model.{k}", v) for k, v in r.model_config.items() if r.train_config.get(k, object()) != v]
    return model + [(f"train.{k}", v) for k, v in r.train_config.items()]


def _elsewhere_table(r: RunReport) -> Table:
    rows = [[e.name, f"{si(e.peak_flops_per_s, 'FLOP/s')} ({'16-bit' if e.precision == '16bit' else 'FP32'})",
             duration(e.seconds), dollars(e.dollars, sign=False),
             "–" if e.energy_kwh is None else si(e.energy_kwh * 1000, "Wh"), e.price_date or "–"]
            for e in r.elsewhere]
    note = (f"The same {si(r.compute.flops, 'FLOP')} on one of each chip at {percent(r.utilisation)} of its "
            "peak (data/accelerators.yaml: vendors' dense peaks, indicative on-demand prices with their dates). "
            "A run this small would never keep a big chip busy: this is the arithmetic, not a quote.")
    return Table("What the same FLOPs would take elsewhere",
                 ["accelerator", "peak used", "time", "cost (US dollars)", "energy", "price listed"], rows, note)


def card_tables(r: RunReport) -> list[Table]:
    """The card's tables, in order: headline and compute, evaluations, cost elsewhere, configuration."""
    evals = [[count(e.step), count(e.tokens), duration(e.elapsed_s), loss(e.train_loss, LOSS_DIGITS),
              loss(e.val_loss, LOSS_DIGITS), "–" if e.lr is None else f"{e.lr:.3g}"] for e in r.evaluations]
    return [
        Table("The run in numbers", ["", "value"], [[name, fmt(kind, v)] for name, kind, v in _headline(r)]),
        Table("Evaluations", ["step", "tokens", "elapsed", "training loss (that step's batch)", "validation loss",
                              "learning rate"], evals),
        _elsewhere_table(r),
        Table("Configuration", ["setting", "value"], [[k, fmt_value(v)] for k, v in _config_items(r)]),
    ]


def compare_tables(a: RunReport, b: RunReport) -> list[Table]:
    """Two runs in one table per topic, with a difference column (B minus A)."""
    names = [f"A: {a.label}", f"B: {b.label}", "difference (B − A)"]  # A/B: two runs may share a label
    numbers = [[name, fmt(kind, va), fmt(kind, vb), fmt_difference(kind, va, vb)]
               for (name, kind, va), (_, _, vb) in zip(_headline(a), _headline(b), strict=True)]
    if a.utilisation != b.utilisation:  # the prices below assume one utilisation for both
        raise ValueError(f"compare runs priced at the same utilisation, not {a.utilisation} and {b.utilisation}")
    config_a, config_b = dict(_config_items(a)), dict(_config_items(b))
    keys = list(config_a) + [k for k in config_b if k not in config_a]
    config = [[k, fmt_value(config_a.get(k)), fmt_value(config_b.get(k)),
               "same" if config_a.get(k) == config_b.get(k) else "differs"] for k in keys]
    price_b = {e.accelerator: e for e in b.elsewhere}
    cost = [[e.name, duration(e.seconds), duration(price_b[e.accelerator].seconds),
             dollars(e.dollars, sign=False), dollars(price_b[e.accelerator].dollars, sign=False)]
            for e in a.elsewhere if e.accelerator in price_b]
    evals_a, evals_b = {e.step: e for e in a.evaluations}, {e.step: e for e in b.evaluations}
    evals = []
    for step in sorted(evals_a.keys() | evals_b.keys()):
        ea, eb = evals_a.get(step), evals_b.get(step)
        evals.append([count(step), loss(ea.train_loss, LOSS_DIGITS) if ea else "", loss(ea.val_loss, LOSS_DIGITS) if ea else "",
                      loss(eb.train_loss, LOSS_DIGITS) if eb else "", loss(eb.val_loss, LOSS_DIGITS) if eb else ""])
    return [
        Table("The two runs in numbers", ["", *names], numbers),
        Table("Evaluations", ["step", "A: training loss", "A: validation loss", "B: training loss",
                              "B: validation loss"], evals,
              "Training loss: that step's batch. An empty cell: that run did not evaluate at that step."),
        Table("What their FLOPs would take elsewhere",
              ["accelerator", "A: time", "B: time", "A: cost (US dollars)", "B: cost (US dollars)"], cost,
              f"At {percent(a.utilisation)} of each chip's peak."),
        Table("Configuration", ["setting", *names[:2], "same?"], config),
    ]


def _series(r: RunReport, colour: str, dashed: bool = False, prefix: str = "") -> list[Series]:
    return [Series(f"{prefix}training loss (per batch)", [(float(s), float(v)) for s, v in r.train_curve], colour,
                   dashed=dashed),
            Series(f"{prefix}validation loss", [(float(e.step), float(e.val_loss)) for e in r.evaluations], colour,
                   bold=True, dashed=dashed)]


def loss_chart(r: RunReport, standalone: bool = False) -> str:
    """The run's loss curves as SVG."""
    return line_chart_svg(_series(r, COLOURS[0]), title=f"Loss curves: {r.label}", standalone=standalone)


def compare_chart(a: RunReport, b: RunReport, standalone: bool = False) -> str:
    """Both runs' curves on one SVG chart: A solid blue, B dashed orange."""
    series = _series(a, COLOURS[0], prefix="A ") + _series(b, COLOURS[1], dashed=True, prefix="B ")
    return line_chart_svg(series, title=f"A: {a.label} · B: {b.label}", standalone=standalone)
