"""engine.cost.report: a real run's report card holds every number the run recorded, in Markdown and in HTML; model output
and labels cannot inject markup; the HTML is self-contained; a comparison holds both runs' numbers."""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

import pytest

from engine.cost.flops import flops_per_token
from engine.cost.report import report_from_folder
from engine.cost.report_files import compare_html, compare_markdown, md_text, to_html, to_markdown
from engine.cost.report_format import LOSS_DIGITS, fmt_value
from engine.load import checkpoint
from engine.number_format import count, duration, loss, rate, si
from engine.train.config import PRESETS
from engine.train.job import run_job
from engine.transform.model import GPTConfig

EVIL = "ok ``` <script>alert(1)</script> `x` [link](http://evil.example) |cell| <img src=x onerror=alert(2)>"


def _train(tmp_path_factory, name: str, text: str, **changes) -> Path:
    run_dir = tmp_path_factory.mktemp(name) / "run"
    status, message, _ = run_job(PRESETS["tiny"].with_changes(**changes), text, None, None, run_dir)
    assert status == "finished", message
    return run_dir


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    """A real tiny run (40 steps, evaluations at 0, 20, 40), whose last sample we then replace by a hostile one:
    a model could write any text, and the card must show it as text."""
    from tests.engine.conftest import CORPUS

    run_dir = _train(tmp_path_factory, "a", CORPUS.read_text(encoding="utf-8")[:20_000], max_steps=40)
    records = checkpoint.read_metrics(run_dir)
    records[-1]["sample"] = EVIL
    (run_dir / checkpoint.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


@pytest.fixture(scope="module")
def run_b(tmp_path_factory) -> Path:
    from tests.engine.conftest import CORPUS

    return _train(tmp_path_factory, "b", CORPUS.read_text(encoding="utf-8")[:20_000], max_steps=20, n_embd=16)


def _md_row(*cells: str) -> str:
    return "| " + " | ".join(md_text(c) for c in cells) + " |"


def _html_row(*cells: str) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def _recorded(run_dir: Path) -> tuple[dict, list[dict], dict]:
    summary = json.loads((run_dir / checkpoint.SUMMARY).read_text())
    config = json.loads((run_dir / checkpoint.CONFIG).read_text())
    return summary, checkpoint.read_metrics(run_dir), config


def test_the_card_holds_every_number_the_run_recorded(run_a):
    summary, metrics, config = _recorded(run_a)
    report = report_from_folder(run_a, label="my first run")
    md, page = to_markdown(report), to_html(report)
    evals = [r for r in metrics if r.get("val_loss") is not None]
    assert [e["step"] for e in evals] == [0, 20, 40]
    for r in evals:  # each evaluation: its step, tokens, time, both losses, learning rate
        cells = (count(r["step"]), count(r["tokens"]), duration(r["elapsed_s"]), loss(r["train_loss"], LOSS_DIGITS),
                 loss(r["val_loss"], LOSS_DIGITS), f"{r['lr']:.3g}")
        assert _md_row(*cells) in md and _html_row(*cells) in page
    headline = {
        "steps": count(summary["steps"]), "tokens trained on": count(summary["tokens"]),
        "elapsed": duration(summary["elapsed_s"]), "validation loss at the start": loss(summary["start_loss"], LOSS_DIGITS),
        "final validation loss": loss(summary["final_val_loss"], LOSS_DIGITS),
        "final training loss": loss(summary["final_train_loss"], LOSS_DIGITS),
        "tokens per second (wall clock, evaluations included)": rate(summary["tokens_per_s"]),
        "tokens per second (training steps alone)": rate(metrics[-1]["tokens_per_s"]),
        "status": summary["status"], "device": summary["device"], "tokenizer": config["tokenizer"],
    }
    for name, value in headline.items():
        assert _md_row(name, value) in md and _html_row(name, value) in page, name
    recorded = ("parameters as the run counted them (no position embeddings, as nanoGPT)", count(summary["params"]))
    assert _md_row(*recorded) in md and _html_row(*recorded) in page
    assert report.parameters.total == summary["params"] + config["model"]["block_size"] * config["model"]["n_embd"]
    for key, value in config["train"].items():  # every setting of the run
        assert _md_row(f"train.{key}", fmt_value(value)) in md and _html_row(f"train.{key}", fmt_value(value)) in page
    assert _md_row("model.vocab_size", str(config["model"]["vocab_size"])) in md
    for step, sample in [(r["step"], r["sample"]) for r in metrics if "sample" in r][:-1]:
        assert f"Step {step}:" in md and sample in md and html.escape(sample) in page
    # and the compute worked out from them
    per_token = flops_per_token(GPTConfig(**config["model"])).total
    assert _md_row("training FLOPs per token: total", count(per_token)) in md
    total = per_token * summary["tokens"]
    assert si(total, "FLOP") in md and si(total, "FLOP") in page
    assert report.compute.flops == total
    assert report.compute.achieved_flops_per_s == pytest.approx(per_token * metrics[-1]["tokens_per_s"])
    assert report.compute.mfu is None and "model FLOPs utilisation" in md  # no peak given: shown as –


def test_cost_elsewhere_and_utilisation(run_a):
    report = report_from_folder(run_a, utilisation=0.5, peak_flops_per_s=1e11)
    a100 = next(e for e in report.elsewhere if e.accelerator == "a100_40gb")
    assert a100.seconds == pytest.approx(report.compute.flops / (312e12 * 0.5))
    assert a100.dollars == pytest.approx(a100.seconds / 3600 * 1.29)
    assert {e.precision for e in report.elsewhere} == {"16bit", "fp32"}  # the CPU row has only an FP32 peak
    assert report.compute.mfu == pytest.approx(report.compute.achieved_flops_per_s / 1e11)
    md = to_markdown(report)
    assert f"{100 * report.compute.mfu:.3g}%" in md and "50%" in md and "NVIDIA A100 40GB" in md


def test_model_output_and_labels_cannot_inject(run_a):
    report = report_from_folder(run_a, label="<b>bold</b> `tick` | pipe")
    page = to_html(report)
    assert "<script" not in page.lower() and "<img" not in page.lower() and "<b>bold" not in page
    assert html.escape(EVIL) in page
    # self-contained: no script, no link, no fetched resource of any kind
    for marker in ("http://", "https://", "href=", "src=", "url(", "@import", "<link", "<iframe"):
        assert marker not in page.replace(html.escape(EVIL), ""), marker
    md = to_markdown(report)
    fence = None  # every line that holds the hostile text is inside a fenced block longer than its backtick runs
    for line in md.splitlines():
        if fence is None and re.fullmatch(r"`{3,}text", line):
            fence = line.removesuffix("text")
        elif fence is not None and line == fence:
            fence = None
        elif "<script" in line or "<img" in line:
            assert fence is not None and len(fence) > 3, line
    assert "# Run report card: \\<b\\>bold\\</b\\> \\`tick\\` \\| pipe" in md


def test_the_chart_is_an_embedded_svg(run_a):
    report = report_from_folder(run_a)
    md = to_markdown(report)
    uri = re.search(r"!\[[^\]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md)
    assert uri, "no embedded chart"
    svg = base64.b64decode(uri.group(1)).decode()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and "<script" not in svg
    assert 'fill="#ffffff"' in svg and ">validation loss<" in svg and ">step<" in svg and ">loss<" in svg
    assert svg.count("<circle") == len(report.evaluations)
    assert "<svg " in to_html(report) and "xmlns" not in to_html(report)  # inline: no namespace URL needed


def test_comparison_holds_both_runs(run_a, run_b):
    a, b = report_from_folder(run_a, label="wide"), report_from_folder(run_b, label="narrow")
    md, page = compare_markdown(a, b), compare_html(a, b)
    for r in (a, b):
        for e in r.evaluations:
            assert loss(e.val_loss, LOSS_DIGITS) in md and loss(e.val_loss, LOSS_DIGITS) in page
    for name, va, vb, diff in [("steps", "40", "20", "-20 (×0.5)"),
                               ("tokens trained on", count(a.tokens), count(b.tokens), "-2,560 (×0.5)"),
                               ("final validation loss", loss(a.final_val_loss, LOSS_DIGITS), loss(b.final_val_loss, LOSS_DIGITS),
                                f"{b.final_val_loss - a.final_val_loss:+.4f}")]:
        assert _md_row(name, va, vb, diff) in md and _html_row(name, va, vb, diff) in page
    assert _md_row("train.n_embd", "32", "16", "differs") in md and _html_row("train.seed", "1337", "1337", "same") in page
    assert "<script" not in page and html.escape(EVIL) in page  # A's last sample, escaped
    svg = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", md).group(1)).decode()
    assert ">A validation loss<" in svg and ">B validation loss<" in svg and 'stroke-dasharray' in svg


def test_a_diverged_run_and_an_empty_folder(tmp_path):
    run_dir = tmp_path / "diverged"
    metrics = [{"step": 0, "train_loss": 4.1, "val_loss": 4.1, "tokens": 0, "elapsed_s": 0.0, "lr": 0.0},
               {"step": 1, "train_loss": 9.0, "val_loss": None, "tokens": 128, "elapsed_s": 0.1, "lr": 3.0,
                "tokens_per_s": 1280.0},
               {"step": 2, "train_loss": math.nan, "val_loss": None, "tokens": 256, "elapsed_s": 0.2, "lr": 3.0,
                "tokens_per_s": 1280.0}]
    config = {"train": PRESETS["tiny"].to_dict(), "tokenizer": "char", "device": "Training on CPU, 1 thread",
              "model": {"block_size": 16, "vocab_size": 65, "n_layer": 2, "n_head": 2, "n_embd": 32}, "params": 1}
    summary = {**checkpoint.summarize_metrics(metrics), "status": "diverged", "message": "The loss exploded <here>."}
    checkpoint.write_run_files(run_dir, config, metrics, summary)
    report = report_from_folder(run_dir)
    assert report.status == "diverged" and report.final_val_loss == 4.1 and report.tokens == 256
    page, md = to_html(report), to_markdown(report)
    assert "The loss exploded &lt;here&gt;." in page and "The loss exploded \\<here\\>." in md
    assert "(none recorded)" in md  # no samples
    with pytest.raises(ValueError, match="holds no run"):
        report_from_folder(tmp_path / "nothing")
