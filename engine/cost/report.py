"""A run's report card (lesson 9): everything a run recorded, what its arithmetic cost, and what it would cost elsewhere.

`report_from_folder` reads what a run left on disk (engine.load.checkpoint's folder: summary.json, metrics.jsonl,
config.json) and adds the compute (engine.cost.flops: parameters, FLOPs per token, total FLOPs, achieved FLOP/s) and
the price of the same FLOPs on every chip of `data/accelerators.yaml` at an assumed utilisation. This module makes
the report, its formatted numbers, its tables (`card_tables`, `compare_tables`: two runs side by side with a
difference column) and its charts (SVG); `engine.cost.report_files` writes them as the Markdown and HTML files a
learner downloads. The page, the Markdown and the HTML are all drawn from the same tables, so a number reads the
same in each.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.cost.catalogue import accelerators
from engine.cost.flops import (
    FlopsPerToken,
    ParameterCount,
    RunCompute,
    count_parameters,
    flops_per_token,
    price_run,
    run_compute,
)
from engine.cost.svg_chart import Series, line_chart_svg
from engine.load import checkpoint
from engine.runs.status import snapshot_from_folder
from engine.transform.model import GPTConfig

DEFAULT_UTILISATION = 0.4  # a well-tuned large training run reaches 40-50% of the chips' peak (PaLM: 46%)
COLOURS = ("#2563eb", "#ea580c")  # run A blue, run B orange: distinct on white, and for most colour-blind eyes


# ---------------------------------------------------------------------------------------------- the report

@dataclass(frozen=True)
class Evaluation:
    """One validation estimate: when it was taken and the losses at that moment."""

    step: int
    tokens: int
    elapsed_s: float
    train_loss: float | None  # the training batch's loss at that step (noisy)
    val_loss: float
    lr: float | None


@dataclass(frozen=True)
class Elsewhere:
    """The run's FLOPs on one catalogue chip at the report's utilisation."""

    accelerator: str  # its id in data/accelerators.yaml
    name: str
    precision: str  # the peak used: "16bit" (what training would use there) or "fp32" where no 16-bit peak is published
    peak_flops_per_s: float
    seconds: float
    dollars: float | None  # None: no price recorded for this chip
    energy_kwh: float | None  # None: no power figure
    price_date: str | None


@dataclass(frozen=True)
class RunReport:
    """Everything on a run's report card, as plain data."""

    run_dir: str
    label: str
    status: str
    message: str
    device: str  # the training process's sentence: "Training on CPU, 2 threads"
    precision: str  # "bfloat16" or "float32"
    tokenizer: str
    train_config: dict[str, Any]
    model_config: dict[str, Any]
    params_recorded: int | None  # as the run counted them (nanoGPT: without the position embeddings)
    parameters: ParameterCount
    steps: int
    tokens: int
    elapsed_s: float
    start_loss: float | None
    final_train_loss: float | None
    final_val_loss: float | None
    tokens_per_s: float | None  # wall clock, evaluations included (summary.json)
    step_tokens_per_s: float | None  # the training steps alone (the loop's smoothed rate at the last step)
    evaluations: list[Evaluation]
    train_curve: list[tuple[int, float]]  # every step's training-batch loss
    samples: list[tuple[int, str]]
    flops: FlopsPerToken
    compute: RunCompute
    utilisation: float
    elsewhere: list[Elsewhere] = field(default_factory=list)


def _precision(device_sentence: str, dtype: str) -> str:
    """The sentence names bf16 whenever the run used it ("..., bf16" on CPU, "..., bfloat16" on CUDA).

    >>> _precision("Training on CPU, 2 threads, bf16", "auto"), _precision("Training on CPU, 1 thread", "auto")
    ('bfloat16', 'float32')
    """
    if "bf16" in device_sentence or "bfloat16" in device_sentence:
        return "bfloat16"
    if not device_sentence and dtype in ("float32", "bfloat16"):  # no sentence (an old folder): what was asked for
        return dtype
    return "float32"


def _model_config(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The model's shape: config.json's "model", else (an older folder) the checkpoint's."""
    known = {f.name for f in fields(GPTConfig)}
    model = config.get("model")
    if not isinstance(model, dict) and (run_dir / checkpoint.CKPT).exists():
        model = checkpoint.read_checkpoint(run_dir).get("model_config")
    if not isinstance(model, dict):
        raise ValueError(f"{run_dir} does not say what model it trained (no config.json with a model, no ckpt.pt)")
    return {k: v for k, v in model.items() if k in known}


def price_elsewhere(flops: float, utilisation: float = DEFAULT_UTILISATION) -> list[Elsewhere]:
    """`flops` on every catalogue chip (its 16-bit peak, or FP32 where it publishes none) at `utilisation`.

    >>> rows = price_elsewhere(3.6e12 * 0.4 * 3600, utilisation=0.4)  # one hour on a 3.6 TFLOP/s chip
    >>> [round(r.seconds) for r in rows if r.accelerator == "apple_m2_gpu"]
    [3600]
    """
    out = []
    for chip in accelerators():
        precision = "16bit" if chip.tflops_16bit else "fp32"
        peak = chip.tflops_16bit or chip.tflops_fp32
        if not peak:
            continue
        price = price_run(0, 0, chip, utilisation=utilisation, flops=flops, precision=precision)
        out.append(Elsewhere(chip.id, chip.name, precision, peak * 1e12, price.wall_hours * 3600, price.dollars,
                             price.energy_kwh, chip.price_date))
    return out


def report_from_folder(run_dir: Path | str, label: str = "", utilisation: float = DEFAULT_UTILISATION,
                       peak_flops_per_s: float | None = None) -> RunReport:
    """Build the report card of the run saved in `run_dir` (finished, stopped, interrupted or diverged).

    `peak_flops_per_s`: this machine's measured peak (engine.cost.flops.probe_peak_flops); the card shows the model
    FLOPs utilisation only when it is given. Raises ValueError for a folder that holds no run.
    """
    run_dir = Path(run_dir)
    snap = snapshot_from_folder(run_dir)
    config = checkpoint_config(run_dir)
    if not snap.metrics and snap.summary is None:
        raise ValueError(f"{run_dir} holds no run yet: nothing was saved there")
    model_config = _model_config(run_dir, config)
    gpt = GPTConfig(**model_config)
    summary = {**checkpoint.summarize_metrics(snap.metrics), **(snap.summary or {})}
    last_rate = next((r["tokens_per_s"] for r in reversed(snap.metrics) if r.get("tokens_per_s") is not None), None)
    compute = run_compute(gpt, {"tokens": summary.get("tokens") or 0, "tokens_per_s": last_rate,
                                "elapsed_s": summary.get("elapsed_s")}, peak_flops_per_s)
    evaluations = [Evaluation(r["step"], int(r.get("tokens") or 0), float(r.get("elapsed_s") or 0.0),
                              r.get("train_loss"), r["val_loss"], r.get("lr"))
                   for r in snap.metrics if r.get("val_loss") is not None]
    curve = [(r["step"], r["train_loss"]) for r in snap.metrics if r.get("train_loss") is not None]
    return RunReport(
        run_dir=str(run_dir), label=label or run_dir.name, status=str(snap.status), message=snap.message,
        device=snap.device_sentence, precision=_precision(snap.device_sentence, snap.config.get("dtype", "auto")),
        tokenizer=str(config.get("tokenizer", "")), train_config=dict(snap.config), model_config=model_config,
        params_recorded=snap.params, parameters=count_parameters(gpt), steps=int(summary.get("steps") or 0),
        tokens=int(summary.get("tokens") or 0), elapsed_s=float(summary.get("elapsed_s") or 0.0),
        start_loss=summary.get("start_loss"), final_train_loss=summary.get("final_train_loss"),
        final_val_loss=summary.get("final_val_loss"), tokens_per_s=summary.get("tokens_per_s"),
        step_tokens_per_s=last_rate, evaluations=evaluations, train_curve=curve, samples=list(snap.samples),
        flops=flops_per_token(gpt), compute=compute, utilisation=utilisation,
        elsewhere=price_elsewhere(compute.flops, utilisation) if compute.flops > 0 else [],
    )


def checkpoint_config(run_dir: Path) -> dict[str, Any]:
    """config.json as a dict ({} when absent or unreadable)."""
    try:
        data = json.loads((run_dir / checkpoint.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------------------------- formatting

_PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"),
             (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def fmt_int(n: int) -> str:
    """A count with thousands separators.

    >>> fmt_int(1234567)
    '1,234,567'
    """
    return f"{int(n):,}"


def fmt_loss(x: float | None) -> str:
    """A loss to 4 decimals; '–' where there is none and 'NaN'/'inf' after a divergence.

    >>> fmt_loss(3.350125), fmt_loss(None), fmt_loss(float("nan"))
    ('3.3501', '–', 'NaN')
    """
    if x is None:
        return "–"
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else "inf"
    return f"{x:.4f}"


def fmt_si(x: float | None, unit: str) -> str:
    """3 significant digits with an SI prefix.

    >>> fmt_si(886_702_080.0, "FLOP"), fmt_si(1.66e-3, "Wh"), fmt_si(0, "FLOP/s")
    ('887 MFLOP', '1.66 mWh', '0 FLOP/s')
    """
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale * 0.9995:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def fmt_duration(seconds: float | None) -> str:
    """A duration in the unit a person would use.

    >>> [fmt_duration(s) for s in (2e-6, 0.0123, 0.12524, 61.5, 900, 5400 * 4, 86400 * 40)]
    ['2 µs', '12.3 ms', '125 ms', '61.50 s', '15.0 min', '6.0 h', '40.0 days']
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = abs(seconds)
    if s == 0:
        return "0 s"
    if s < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if s < 1:
        return f"{seconds * 1e3:.3g} ms"
    if s < 120:
        return f"{seconds:.2f} s"
    if s < 7200:
        return f"{seconds / 60:.1f} min"
    if s < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"


def fmt_dollars(x: float | None) -> str:
    """US dollars (the column says so: no `$`, which some Markdown viewers read as maths).

    >>> fmt_dollars(5.3421), fmt_dollars(0.0000012345), fmt_dollars(None)
    ('5.34', '1.2e-06', 'no price listed')
    """
    if x is None:
        return "no price listed"
    return f"{x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"


def fmt_rate(x: float | None) -> str:
    """Tokens per second, to the token.

    >>> fmt_rate(40881.289), fmt_rate(None)
    ('40,881', '–')
    """
    return "–" if x is None or not math.isfinite(x) else f"{x:,.0f}"


def fmt_value(value: Any) -> str:
    """A config value as text: words as they are, numbers plainly, anything with spaces or newlines quoted.

    >>> [fmt_value(v) for v in (None, True, 0.01, 3e-3, 1337, "adamw", "\\n")]
    ['none', 'true', '0.01', '0.003', '1337', 'adamw', '"\\\\n"']
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if not text or not text.isprintable() or text != text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


def fmt_percent(x: float | None) -> str:
    """A fraction as a percentage, 3 significant digits.

    >>> fmt_percent(0.0866)
    '8.66%'
    """
    return "–" if x is None else f"{100 * x:.3g}%"


# kind -> how a value of that kind is written; the comparison writes differences with the same rule
_FORMATS = {
    "int": fmt_int, "loss": fmt_loss, "duration": fmt_duration, "rate": fmt_rate, "percent": fmt_percent,
    "flops": lambda x: f"{x:.3g} ({fmt_si(x, 'FLOP')})", "flops_rate": lambda x: fmt_si(x, "FLOP/s"),
    "text": lambda x: str(x),
}


def fmt(kind: str, value: Any) -> str:
    """A value as the card writes it; '–' for a missing one."""
    return "–" if value is None else _FORMATS[kind](value)


def fmt_difference(kind: str, a: Any, b: Any) -> str:
    """B minus A in A's units, and B / A where both are positive counts or amounts.

    >>> fmt_difference("int", 5120, 10240), fmt_difference("loss", 3.35, 3.1), fmt_difference("text", "a", "a")
    ('+5,120 (×2)', '-0.2500', 'same')
    """
    if kind == "text":
        return "same" if a == b else "differs"
    if a is None or b is None:
        return "–"
    if not (math.isfinite(a) and math.isfinite(b)):
        return "–"
    d = b - a
    if kind == "loss":
        return f"{d:+.4f}"
    if kind == "percent":
        return f"{100 * d:+.3g} points"
    sign = "+" if d > 0 else "-" if d < 0 else "±"
    body = {"int": lambda v: fmt_int(v), "duration": fmt_duration, "rate": fmt_rate,
            "flops": lambda v: fmt_si(v, "FLOP"), "flops_rate": lambda v: fmt_si(v, "FLOP/s")}[kind](abs(d))
    ratio = f" (×{b / a:.3g})" if a > 0 and b > 0 else ""
    return f"{sign}{body}{ratio}"


# ---------------------------------------------------------------------------------------------- tables

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
    rows = [[e.name, f"{fmt_si(e.peak_flops_per_s, 'FLOP/s')} ({'16-bit' if e.precision == '16bit' else 'FP32'})",
             fmt_duration(e.seconds), fmt_dollars(e.dollars),
             "–" if e.energy_kwh is None else fmt_si(e.energy_kwh * 1000, "Wh"), e.price_date or "–"]
            for e in r.elsewhere]
    note = (f"The same {fmt_si(r.compute.flops, 'FLOP')} on one of each chip at {fmt_percent(r.utilisation)} of its "
            "peak (data/accelerators.yaml: vendors' dense peaks, indicative on-demand prices with their dates). "
            "A run this small would never keep a big chip busy: this is the arithmetic, not a quote.")
    return Table("What the same FLOPs would take elsewhere",
                 ["accelerator", "peak used", "time", "cost (US dollars)", "energy", "price listed"], rows, note)


def card_tables(r: RunReport) -> list[Table]:
    """The card's tables, in order: headline and compute, evaluations, cost elsewhere, configuration."""
    evals = [[fmt_int(e.step), fmt_int(e.tokens), fmt_duration(e.elapsed_s), fmt_loss(e.train_loss),
              fmt_loss(e.val_loss), "–" if e.lr is None else f"{e.lr:.3g}"] for e in r.evaluations]
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
    cost = [[e.name, fmt_duration(e.seconds), fmt_duration(price_b[e.accelerator].seconds),
             fmt_dollars(e.dollars), fmt_dollars(price_b[e.accelerator].dollars)]
            for e in a.elsewhere if e.accelerator in price_b]
    evals_a, evals_b = {e.step: e for e in a.evaluations}, {e.step: e for e in b.evaluations}
    evals = []
    for step in sorted(evals_a.keys() | evals_b.keys()):
        ea, eb = evals_a.get(step), evals_b.get(step)
        evals.append([fmt_int(step), fmt_loss(ea.train_loss) if ea else "", fmt_loss(ea.val_loss) if ea else "",
                      fmt_loss(eb.train_loss) if eb else "", fmt_loss(eb.val_loss) if eb else ""])
    return [
        Table("The two runs in numbers", ["", *names], numbers),
        Table("Evaluations", ["step", "A: training loss", "A: validation loss", "B: training loss",
                              "B: validation loss"], evals,
              "Training loss: that step's batch. An empty cell: that run did not evaluate at that step."),
        Table("What their FLOPs would take elsewhere",
              ["accelerator", "A: time", "B: time", "A: cost (US dollars)", "B: cost (US dollars)"], cost,
              f"At {fmt_percent(a.utilisation)} of each chip's peak."),
        Table("Configuration", ["setting", *names[:2], "same?"], config),
    ]


# ---------------------------------------------------------------------------------------------- charts

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
