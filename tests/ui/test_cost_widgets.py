"""Lesson 9's cost widgets in AppTest, on a real tiny run recorded as the learner's lesson-7 run (`run.main`): the
cost meter shows engine.cost.flops's numbers for that run and the machine's peak once measured (never while a run
trains), the model pricer prices a published model with its sources, the compute-optimal calculator splits a
budget; and the two throughput facts the quiz asks about."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cost import peak as peak_store
from engine.cost.catalogue import accelerators
from engine.cost.catalogue import model as published_model
from engine.cost.flops import count_parameters, flops_per_token, price_run, run_compute
from engine.number_format import dollars, duration, sci, si
from engine.runs.snapshot import snapshot_from_folder
from engine.train.config import PRESETS
from engine.train.job import run_job
from engine.transform.model import GPTConfig
from paths import DEFAULT_CORPUS
from tests.ui.conftest import no_errors, texts, widget_app

STEPS = 20


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> str:
    """A real finished run of the tiny preset (about a second), shared by the tests of this file."""
    run_dir = tmp_path_factory.mktemp("cost") / "run"
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    status, _, _ = run_job(replace(PRESETS["tiny"], max_steps=STEPS), text, None, None, run_dir)
    assert status == "finished"
    return str(run_dir)


def _learner_with_run(run_dir: str | None) -> int:
    from ui.session import store

    learner = store().get_or_create_learner("Ada")
    if run_dir is not None:
        store().set_fact(learner.id, "run.main", {"run_id": "gone-after-restart", "run_dir": run_dir, "label": "x"})
    return learner.id


def _engine_numbers(run_dir: str):
    """What engine.cost.flops says about the run, from its own files (config.json holds the model with its vocabulary)."""
    saved = json.loads((Path(run_dir) / "config.json").read_text())
    config = GPTConfig(**saved["model"])
    return config, run_compute(config, snapshot_from_folder(run_dir).metrics[-1])


# ------------------------------------------------------------------------------------------------ cost meter

def test_cost_meter_without_a_run_points_to_lesson_7(db):
    _learner_with_run(None)
    at = widget_app("cost_meter")
    no_errors(at)
    assert "lesson 7" in texts(at) and "No training run yet" in texts(at)


def test_cost_meter_shows_the_engines_numbers_for_the_run(db, tiny_run):
    _learner_with_run(tiny_run)
    peak_store.peak_path().unlink(missing_ok=True)
    at = widget_app("cost_meter", {"utilisation": 0.5})
    no_errors(at)
    config, rc = _engine_numbers(tiny_run)
    shown = texts(at)
    per_token = flops_per_token(config)
    assert rc.tokens > 0 and f"FLOPs so far: {sci(rc.flops)}" in shown
    assert f"{rc.tokens:,} tokens × {per_token.total:,} FLOPs each" in shown
    assert f"dense layers **{per_token.dense:,}**" in shown and f"output head **{per_token.head:,}**" in shown
    assert f"attention **{per_token.attention:,}**" in shown
    assert f"Achieved FLOP/s: **{si(rc.achieved_flops_per_s, 'FLOP/s')}** while the training steps ran" in shown
    assert "measure this machine's peak" in shown and "Model FLOPs utilisation" not in shown
    # the table: every catalogue chip with a peak, at the card's utilisation
    table = next(m.value for m in at.markdown if m.value.startswith("| Accelerator"))
    for chip in accelerators():
        precision = "16bit" if chip.tflops_16bit is not None else "fp32"
        price = price_run(count_parameters(config).total, rc.tokens, chip, utilisation=0.5, flops=rc.flops,
                          precision=precision)
        assert f"| {chip.name} |" in table
        assert f"| {duration(price.wall_hours * 3600)} | {dollars(price.dollars)} |" in table
    assert "at 50% of its peak" in shown

    at.button(key="harness-measure").click().run()  # nothing trains: the probe runs and is kept
    no_errors(at)
    kept = peak_store.measured_peak("cpu")
    assert kept is not None
    expected = run_compute(config, snapshot_from_folder(tiny_run).metrics[-1], kept.flops_per_s)
    assert f"Model FLOPs utilisation: **{expected.mfu:.1%}**" in texts(at)
    assert "This machine's measured peak" in texts(at) and at.button(key="harness-measure").label.endswith("again")


def test_cost_meter_follows_a_live_run_and_keeps_the_peak_button_off(db):
    """While the learner's run trains, the meter polls it (and is its heartbeat) and the probe is refused."""
    from engine.runs.manager import get_manager
    from ui import run_view

    learner = _learner_with_run(None)
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    run_id = run_view.start(learner, "main", replace(PRESETS["tiny"], max_steps=1_000_000), text, "endless")
    try:
        at = widget_app("cost_meter")
        deadline = time.time() + 60
        while "FLOPs so far" not in texts(at) and time.time() < deadline:
            time.sleep(0.5)
            at.run()
        no_errors(at)
        assert "🟢 Running" in texts(at) and at.button(key="harness-measure").disabled
        assert "Not while a run is training" in texts(at)
        with pytest.raises(peak_store.PeakBusy):
            peak_store.measure_peak("cpu")
    finally:
        get_manager().stop(run_id)
        get_manager().wait(run_id, timeout=30)
    at.run()
    no_errors(at)
    assert not at.button(key="harness-measure").disabled


def _kept(dtype: str, device: str = "cpu", name: str = "Test CPU") -> peak_store.MeasuredPeak:
    return peak_store.MeasuredPeak(device_name=name, device=device, dtype=dtype, size=2048, inner=1, repeats=3,
                                   seconds=[0.01] * 3, best_s=0.01, median_s=0.01, flops_per_s=1.7e12, threads=2,
                                   measured_at=time.time())


@pytest.mark.parametrize(("dtype", "words", "caveat"), [("float32", "float32", None),
                                                         ("bfloat16", "bf16", "so its utilisation reads low.")])
def test_the_peak_says_its_precision_and_the_caveat_shows_only_when_the_runs_differs(db, tiny_run, monkeypatch,
                                                                                      dtype, words, caveat):
    """The tiny run trained in float32 (its device sentence names no bf16): a peak kept in float32 needs no caveat,
    one kept in bf16 makes its utilisation read low, and the peak's caption names the precision it was kept in."""
    _learner_with_run(tiny_run)
    monkeypatch.setattr(peak_store, "measured_peak", lambda device="cpu", root=None: _kept(dtype))
    at = widget_app("cost_meter")
    no_errors(at)
    shown = texts(at)
    assert "Model FLOPs utilisation" in shown
    assert f"(Test CPU, 2 threads, {words} matrix multiplications, measured" in shown
    assert "float32 matrix multiplications" not in shown or dtype == "float32"
    assert "utilisation reads" not in shown if caveat is None else caveat in shown


def _on_a_gpu(monkeypatch, kept=None, measuring=False, error=None) -> list[str]:
    """The learner's run as if it trained on GPU 0, with the peak store's answers for it; returns the devices
    ensure_peak was asked for. A run training beside it (training_runs) must not matter on a GPU."""
    from ui import run_compute

    asked: list[str] = []
    monkeypatch.setattr(run_compute, "peak_device", lambda run: "cuda:0")
    monkeypatch.setattr(peak_store, "measured_peak", lambda device="cpu", root=None: kept)
    monkeypatch.setattr(peak_store, "ensure_peak", lambda device="cpu", root=None, manager=None: (asked.append(device), kept)[1])
    monkeypatch.setattr(peak_store, "measuring", lambda device="cpu": measuring)
    monkeypatch.setattr(peak_store, "probe_error", lambda device="cpu": error)
    monkeypatch.setattr(peak_store, "training_runs", lambda manager=None: 3)
    return asked


def test_on_a_gpu_the_page_starts_the_probe_and_says_it_is_measuring(db, tiny_run, monkeypatch):
    _learner_with_run(tiny_run)
    asked = _on_a_gpu(monkeypatch, measuring=True)
    at = widget_app("cost_meter")
    no_errors(at)
    assert asked == ["cuda:0"]
    assert "Measuring this GPU's peak in a process of its own" in texts(at)
    assert at.button(key="harness-measure").disabled  # once, not twice at a time
    assert "Not while a run is training" not in texts(at)


def test_on_a_gpu_a_failed_probe_says_why_and_the_button_stays_on_while_runs_train(db, tiny_run, monkeypatch):
    _learner_with_run(tiny_run)
    _on_a_gpu(monkeypatch, error="the peak probe on cuda:0 exited 1: CUDA error: no kernel image")
    at = widget_app("cost_meter")
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "This GPU's peak could not be measured: the peak probe on cuda:0 exited 1: CUDA error: no kernel image"]
    button = at.button(key="harness-measure")
    assert not button.disabled and button.label == "Measure this GPU's peak"
    assert "Not while a run is training" not in texts(at)


def test_on_a_gpu_the_kept_peak_is_shown_in_its_precision(db, tiny_run, monkeypatch):
    _learner_with_run(tiny_run)
    kept = _kept("bfloat16", device="cuda:0", name="NVIDIA H100 80GB HBM3")
    _on_a_gpu(monkeypatch, kept=kept)
    at = widget_app("cost_meter")
    no_errors(at)
    assert "(NVIDIA H100 80GB HBM3, bf16 matrix multiplications, measured" in texts(at)  # no CPU threads
    assert at.button(key="harness-measure").label == "Measure the peak again"


# ------------------------------------------------------------------------------------------------ model price

def _table(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("| Figure"))


def _row(table: str, figure: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {figure} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_model_price_matches_the_engine_and_shows_the_authors_figures(db, tiny_run):
    from ui.text import escape_md

    _learner_with_run(tiny_run)
    at = widget_app("model_price")  # GPT-3 on 1,024 A100s at 40%, 400 g/kWh
    no_errors(at)
    gpt3, a100 = published_model("gpt3_175b"), accelerators()[0]
    price = price_run(gpt3.parameters, gpt3.training_tokens, a100, count=1024, utilisation=0.4,
                      grid_g_per_kwh=400.0, flops=gpt3.training_flops)
    table = _table(at)
    assert _row(table, "Compute (FLOPs)")[1:3] == ["–", sci(3.14e23)]
    assert _row(table, "GPU-hours (all chips)")[1] == f"{price.gpu_hours:,.0f}"
    assert _row(table, "Wall-clock time")[1] == duration(price.wall_hours * 3600)
    assert _row(table, "Cost (rented chips)")[1] == dollars(price.dollars)
    assert _row(table, "Energy (MWh)")[1:3] == [f"{price.energy_kwh / 1000:,.3g}", "1,287"]  # theirs beside
    assert _row(table, "CO₂ (tonnes)")[1:3] == [f"{price.co2_kg / 1000:,.3g}", "552"]
    assert all(_row(table, f)[3] for f in ("Parameters", "Training tokens", "Energy (MWh)"))  # every row says
    shown = texts(at)
    assert f"(1) {escape_md(gpt3.source)}" in shown and f"(2) {escape_md(a100.source)}" in shown

    _, rc = _engine_numbers(tiny_run)
    years = 3.14e23 / rc.achieved_flops_per_s / (365.25 * 86400)
    assert f"would need **{years:,.0f} years**" in shown

    at.number_input(key="harness-count").set_value(2048).run()  # twice the chips: half the days
    assert _row(_table(at), "Wall-clock time")[1] == duration(price.wall_hours * 3600 / 2)


def test_model_price_estimates_compute_where_it_was_not_published(db):
    _learner_with_run(None)
    at = widget_app("model_price", {"model": "llama2_70b", "accelerator": "h100_sxm", "count": 2048})
    no_errors(at)
    table = _table(at)
    assert _row(table, "Compute (FLOPs)")[1:3] == [sci(6 * 70e9 * 2e12), "not published"]
    assert "6 × parameters × tokens" in _row(table, "Compute (FLOPs)")[3]
    assert _row(table, "GPU-hours (all chips)")[2] == "1,720,320"  # Meta's own figure beside ours
    assert "Train a run on lesson 7" in texts(at)
    at.selectbox(key="harness-chip").set_value("apple_m2_gpu").run()  # no 16-bit peak, no power figure
    no_errors(at)
    assert _row(_table(at), "Energy (MWh)")[1] == "no power figure" and "priced at its FP32 peak" in texts(at)
    at.selectbox(key="harness-model").set_value("gpt2_1_5b").run()
    no_errors(at)
    assert _row(_table(at), "Compute (FLOPs)")[1] == "cannot be estimated"


# ------------------------------------------------------------------------------------------------ compute-optimal

def _spec(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_compute_optimal_splits_the_budget_and_places_it_among_published_models(db, tiny_run):
    from engine.cost.flops import compute_optimal

    _learner_with_run(tiny_run)
    at = widget_app("compute_optimal")
    no_errors(at)
    split = compute_optimal(1e21)
    assert f"**{sci(split.parameters)} parameters** trained on **{sci(split.tokens)} tokens**" in texts(at)
    spec = _spec(at)
    assert spec["layout"]["xaxis"]["type"] == "log" and spec["layout"]["xaxis"]["title"]["text"] == "parameters (N)"
    assert spec["layout"]["yaxis"]["type"] == "log" and "tokens" in spec["layout"]["yaxis"]["title"]["text"]
    traces = {t["name"]: t for t in spec["data"]}
    assert "GPT-3 (175B)" in traces["published models"]["text"]
    assert traces["your budget's split"]["x"] == [pytest.approx(split.parameters)]
    line = traces["20 tokens per parameter"]
    assert line["y"][0] == pytest.approx(20 * line["x"][0])
    assert "your lesson-7 run" in traces  # the learner's own model, on the same chart

    at.selectbox(key="harness-preset").set_value("chinchilla_70b").run()  # Chinchilla's budget gives Chinchilla
    no_errors(at)
    assert at.number_input(key="harness-flops").value == pytest.approx(5.76e23)
    assert f"**{sci(compute_optimal(5.76e23).parameters)} parameters**" in texts(at)

    _, rc = _engine_numbers(tiny_run)
    at.selectbox(key="harness-preset").set_value("own").run()
    assert at.number_input(key="harness-flops").value == pytest.approx(rc.flops)
    at.number_input(key="harness-ratio").set_value(100.0).run()
    no_errors(at)
    assert f"**{sci(compute_optimal(rc.flops, 100.0).tokens)} tokens**" in texts(at)
    assert "100 tokens per parameter" in {t["name"] for t in _spec(at)["data"]}


# ------------------------------------------------------------------------------------------------ quiz facts

def test_throughput_facts_from_the_ended_run(db, tiny_run):
    from ui.facts import learner_facts

    learner = _learner_with_run(tiny_run)
    config, rc = _engine_numbers(tiny_run)
    last = snapshot_from_folder(tiny_run).metrics[-1]
    facts = learner_facts(learner)
    tflops = flops_per_token(config).total * last["tokens_per_s"] / 1e12
    assert facts["run.achieved_tflops"] == pytest.approx(tflops)
    assert facts["run.gpt3_years"] == pytest.approx(3.14e23 / (tflops * 1e12) / (365.25 * 86400))


def test_checkpoint_facts_match_the_saved_weights(db, tiny_run):
    """Lesson 10 asks for the bf16 size of the learner's weights: the facts agree with the checkpoint itself."""
    from engine.load.weights import anatomy
    from ui.facts import learner_facts

    facts = learner_facts(_learner_with_run(tiny_run))
    saved = anatomy(tiny_run)
    assert facts["run.parameters"] == saved.parameters
    assert facts["run.bf16_mb"] == pytest.approx(saved.weights_bytes / 2 / 1e6)  # float32 on disk: half of it


def test_no_throughput_facts_from_a_diverged_or_a_training_run(db, tiny_run, tmp_path, monkeypatch):
    import shutil

    from ui import facts as facts_mod
    from ui import run_view

    broken = tmp_path / "diverged"
    shutil.copytree(tiny_run, broken)
    summary = json.loads((broken / "summary.json").read_text())
    (broken / "summary.json").write_text(json.dumps(dict(summary, status="diverged")))
    learner = _learner_with_run(str(broken))
    assert "run.achieved_tflops" not in facts_mod.learner_facts(learner)

    _learner_with_run(tiny_run)
    real = run_view.load
    monkeypatch.setattr(facts_mod.run_view, "load",
                        lambda who, key: run_view.RunView.of(key, replace(real(who, key), status="running")))
    facts = facts_mod.learner_facts(learner)
    assert "run.start_loss" in facts and "run.achieved_tflops" not in facts and "run.gpt3_years" not in facts


@pytest.mark.parametrize(("name", "params"), [("model_price", {"utilisation": 0.01, "grid_g_per_kwh": 412.5}),
                                              ("compute_optimal", {"flops": 0.5, "tokens_per_parameter": 0.01})])
def test_any_valid_card_params_draw(db, name, params):
    """Values the parameter models allow but the knobs' ranges do not start at the nearest knob position."""
    _learner_with_run(None)
    no_errors(widget_app(name, params))
