"""engine.cost.flops and engine.cost.catalogue: parameter counts against the real model, FLOPs, the probe, pricing, catalogues."""

from __future__ import annotations

import dataclasses
import math

import pytest

from engine.cost import catalogue
from engine.cost import flops as cost
from engine.train.config import PRESETS
from engine.transform.model import GPT, GPTConfig

CONFIGS = {
    "tiny": PRESETS["tiny"].model_config(65),
    "lesson": PRESETS["lesson"].model_config(65),
    "gpu": PRESETS["gpu"].model_config(65),
    "bias": dataclasses.replace(PRESETS["tiny"].model_config(65), bias=True),
    "odd": GPTConfig(block_size=7, vocab_size=101, n_layer=3, n_head=3, n_embd=24, bias=True),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parameter_count_matches_the_real_model(name: str) -> None:
    cfg = CONFIGS[name]
    model = GPT(cfg)
    counted = cost.count_parameters(cfg)
    assert counted.total == sum(p.numel() for p in model.parameters())
    # nanoGPT's non-embedding count leaves out only the positions (the token matrix is also the head)
    assert counted.total - counted.position_embedding == model.num_params()
    assert sum(r["parameters"] for r in counted.rows()) == counted.total
    assert math.isclose(sum(r["share"] for r in counted.rows()), 1.0)


def test_flops_per_token_equals_nanogpt_estimate() -> None:
    """nanoGPT's estimate_mfu: flops_per_token = 6 N + 12 L H Q T, with N = get_num_params() (minus positions)."""
    for cfg in CONFIGS.values():
        model = GPT(cfg)
        hq = cfg.n_head * (cfg.n_embd // cfg.n_head)
        nanogpt = 6 * model.num_params() + 12 * cfg.n_layer * hq * cfg.block_size
        f = cost.flops_per_token(cfg)
        assert f.total == nanogpt
        assert f.dense == 6 * cost.count_parameters(cfg).non_embedding
        assert f.attention == 12 * cfg.n_layer * cfg.n_embd * cfg.block_size


def test_run_compute_from_metrics() -> None:
    cfg = CONFIGS["lesson"]
    per_token = cost.flops_per_token(cfg).total
    r = cost.run_compute(cfg, {"tokens": 2048, "tokens_per_s": 1000.0, "elapsed_s": 4.0}, peak_flops_per_s=1e11)
    assert r.flops == per_token * 2048
    assert r.achieved_flops_per_s == per_token * 1000.0
    assert r.average_flops_per_s == per_token * 2048 / 4.0
    assert r.mfu == pytest.approx(per_token * 1000.0 / 1e11)
    # step 0: no rate, no time yet, no peak known
    first = cost.run_compute(cfg, {"tokens": 0, "tokens_per_s": None, "elapsed_s": 0.0})
    assert (first.flops, first.achieved_flops_per_s, first.average_flops_per_s, first.mfu) == (0.0, None, None, None)


def test_probe_measures_a_positive_peak() -> None:
    probe = cost.probe_peak_flops(size=256, repeats=5)
    assert 1 <= probe.repeats == len(probe.seconds) <= 5
    assert probe.flops_per_s == pytest.approx(2 * 256**3 / probe.median_s)
    assert probe.flops_per_s > 1e8  # even one slow thread does more than 0.1 GFLOP/s
    assert cost.mfu(probe.flops_per_s / 2, probe.flops_per_s) == pytest.approx(0.5)


def test_mfu_needs_a_positive_peak() -> None:
    with pytest.raises(ValueError):
        cost.mfu(1.0, 0.0)


def test_price_run_worked_by_hand() -> None:
    """A made-up chip: 100 TFLOP/s peak, $2 an hour, 500 W. Train N = 1e9 parameters on D = 30e9 tokens on 8 of them
    at 50% utilisation, PUE 1.2, a 400 g/kWh grid.

    C = 6 N D = 6 x 1e9 x 30e9 = 1.8e20 FLOPs; one chip does 100e12 x 0.5 = 5e13 FLOP/s, so
    1.8e20 / 5e13 = 3.6e6 chip-seconds = 1,000 GPU-hours; over 8 chips 125 hours of wall clock;
    1,000 h x $2 = $2,000; 1,000 h x 0.5 kW = 500 kWh, x PUE 1.2 = 600 kWh; 600 kWh x 0.4 kg/kWh = 240 kg CO2.
    """
    chip = catalogue.Accelerator(id="made_up", name="Made up", kind="gpu", tflops_16bit=100.0, tflops_fp32=None,
                                 memory_gb=None, power_w=500.0, price_usd_per_hour=2.0, price_date="2026",
                                 source="this test")
    r = cost.price_run(1e9, 30e9, chip, count=8, utilisation=0.5, pue=1.2, grid_g_per_kwh=400)
    assert r.flops == pytest.approx(1.8e20)
    assert r.gpu_hours == pytest.approx(1000.0)
    assert r.wall_hours == pytest.approx(125.0)
    assert r.dollars == pytest.approx(2000.0)
    assert r.energy_kwh == pytest.approx(600.0)
    assert r.co2_kg == pytest.approx(240.0)
    with pytest.raises(ValueError, match="fp32"):
        cost.price_run(1e9, 30e9, chip, precision="fp32")
    with pytest.raises(ValueError):
        cost.price_run(1e9, 30e9, chip, utilisation=0.0)


def test_price_run_from_the_catalogue() -> None:
    r = cost.price_run(1e9, 20e9, "h100_sxm", count=4)
    assert r.gpu_hours == pytest.approx(6 * 1e9 * 20e9 / (989e12 * 0.4) / 3600)
    assert r.wall_hours == pytest.approx(r.gpu_hours / 4)
    # no published price or power: those come back as None, the hours still do
    m2 = cost.price_run(1e6, 20e6, "apple_m2_gpu", precision="fp32")
    assert m2.gpu_hours > 0 and m2.dollars is None and m2.energy_kwh is None and m2.co2_kg is None
    with pytest.raises(KeyError, match="h100_sxm"):
        cost.price_run(1e9, 1e9, "no_such_chip")


def test_compute_optimal_split() -> None:
    s = cost.compute_optimal(6 * 20 * 1e6**2)  # exactly N = 1e6, D = 20e6
    assert s.parameters == pytest.approx(1e6) and s.tokens == pytest.approx(20e6)
    assert 6 * s.parameters * s.tokens == pytest.approx(s.flops)
    chinchilla = catalogue.model("chinchilla_70b")
    s = cost.compute_optimal(chinchilla.training_flops)
    assert s.parameters == pytest.approx(chinchilla.parameters, rel=0.02)
    assert s.tokens == pytest.approx(chinchilla.training_tokens, rel=0.02)


def test_every_catalogue_row_loads_and_has_a_source() -> None:
    chips, models = catalogue.accelerators(), catalogue.published_models()
    assert len(chips) >= 8 and len(models) >= 5
    for row in (*chips, *models):
        assert row.source.strip(), row.id
    for chip in chips:
        assert chip.tflops_16bit is not None or chip.tflops_fp32 is not None, chip.id
        if chip.tflops_16bit is not None and chip.tflops_fp32 is not None and chip.kind == "gpu":
            assert chip.tflops_16bit >= chip.tflops_fp32, chip.id  # tensor cores beat plain FP32
    for m in models:
        if m.training_flops is not None and m.training_tokens is not None:
            # a published compute figure agrees with 6ND within a factor of 1.5
            assert 1 / 1.5 < m.training_flops / (6 * m.parameters * m.training_tokens) < 1.5, m.id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {id: x, name: X, kind: gpu}", "accelerators.yaml, row 1 ('x'), field 'tflops_16bit': missing"),
        ("- {id: x, name: X, kind: gpu, tflops_16bit: 1, tflops_fp32: 1, memory_gb: 1, power_w: 1,"
         " price_usd_per_hour: 1, price_date: null, source: s}", "field 'price_date'"),
        ("- {id: x, name: X, kind: tpu, tflops_16bit: 1, tflops_fp32: 1, memory_gb: 1, power_w: 1,"
         " price_usd_per_hour: null, price_date: null, source: s}", "field 'kind'"),
        ("- {id: x, name: X, kind: gpu, tflops_16bit: 1, tflops_fp32: 1, memory_gb: 1, power_w: 1,"
         " price_usd_per_hour: null, price_date: null, source: ' '}", "field 'source'"),
        ("- {id: x, name: X, kind: gpu, tflops_16bit: 1, tflops_fp32: 1, memory_gb: 1, power_w: 1,"
         " price_usd_per_hour: null, price_date: null, source: s, colour: red}", "field 'colour': unknown"),
        ("- {id: x, name: X, kind: gpu, tflops_16bit: true, tflops_fp32: 1, memory_gb: 1, power_w: 1,"
         " price_usd_per_hour: null, price_date: null, source: s}", "field 'tflops_16bit': expected a number"),
        ("just text", "must be a list"),
    ],
)
def test_bad_accelerator_rows_name_file_row_and_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        catalogue.parse_accelerators(text)


def test_bad_model_row_names_the_row() -> None:
    good = ("- {id: a, name: A, year: 2020, parameters: 1.0e+6, training_tokens: null, training_flops: null,"
            " energy_mwh: null, co2_tonnes: null, gpu_hours: null, source: s}\n")
    with pytest.raises(ValueError, match=r"row 2 \('a'\), field 'id'"):
        catalogue.parse_published_models(good + good)
    with pytest.raises(ValueError, match=r"row 1 \('a'\), field 'parameters': must not be null"):
        catalogue.parse_published_models(good.replace("parameters: 1.0e+6", "parameters: null"))
