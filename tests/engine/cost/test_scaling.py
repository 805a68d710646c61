"""engine.cost.scaling and bench.scaling: the power-law fit, the ladder, the show-me view, a tiny ladder trained.

The default ladder's time and losses are measured by `python -m bench scaling` (docs/benchmarks.md), not
here: these tests train a ladder of toy sizes that takes seconds.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import report as bench_report
from bench import scaling as bench_scaling
from engine.cost import scaling
from engine.cost.scaling import RungPoint, fit_power_law, sweep_view
from engine.train.config import PRESETS

COMPUTE = [1e9, 4e9, 1.6e10, 6.4e10, 2.56e11, 1e12]
TRUE = (1.4, 60.0, 0.15)  # E, A, alpha


def law(c: float, e: float = TRUE[0], a: float = TRUE[1], alpha: float = TRUE[2]) -> float:
    return e + a * c ** -alpha


def test_fit_recovers_a_known_law_exactly() -> None:
    fit = fit_power_law(COMPUTE, [law(c) for c in COMPUTE])
    assert fit.E == pytest.approx(TRUE[0], rel=1e-3)
    assert fit.A == pytest.approx(TRUE[1], rel=1e-2)
    assert fit.alpha == pytest.approx(TRUE[2], rel=1e-3)
    assert max(abs(r) for r in fit.residuals) < 1e-6
    assert fit.predict(1e13) == pytest.approx(law(1e13), rel=1e-4)


def test_fit_with_small_noise_is_close_and_predicts_the_next_size() -> None:
    rng = np.random.default_rng(0)
    noisy = [law(c) * (1 + rng.normal(0, 0.003)) for c in COMPUTE]
    fit = fit_power_law(COMPUTE, noisy)
    assert 0 <= fit.E < min(noisy)
    assert fit.alpha > 0
    assert abs(fit.E - TRUE[0]) < 0.3 and abs(fit.alpha - TRUE[2]) < 0.1
    assert fit.predict(4e12) == pytest.approx(law(4e12), rel=0.02)  # one size beyond the fitted ones
    assert len(fit.residuals) == len(COMPUTE) and max(abs(r) for r in fit.residuals) < 0.05


def test_fit_of_a_plain_power_law_puts_the_floor_at_zero() -> None:
    fit = fit_power_law(COMPUTE[:4], [5.0 * c ** -0.05 for c in COMPUTE[:4]])
    assert fit.E < 0.05 and fit.alpha == pytest.approx(0.05, rel=0.05)


def test_the_fit_ignores_the_order_of_the_points() -> None:
    pairs = list(zip(COMPUTE, [law(c) for c in COMPUTE], strict=True))[::-1]
    fit = fit_power_law([c for c, _ in pairs], [v for _, v in pairs])
    assert fit.alpha == pytest.approx(TRUE[2], rel=1e-3)


@pytest.mark.parametrize(("compute", "loss", "reason"), [
    ([1e9, 1e10], [3.0, 2.5], "at least 3"),
    ([1e9, 1e10, 1e11], [2.0, 2.2, 2.4], "does not fall"),
    ([1e9, 1e10, 1e11], [2.0, float("nan"), 1.5], "positive finite"),
    ([1e9, -1.0, 1e11], [2.0, 1.8, 1.5], "positive finite"),
    ([1e9, 1e10, 1e11], [2.0, 1.8], "compute values"),
])
def test_a_fit_that_cannot_work_says_why(compute, loss, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        fit_power_law(compute, loss)


def test_sweep_view_waits_for_every_fitted_size_then_predicts_and_scores() -> None:
    fitted = [RungPoint(f"r{i}", 1000 * (i + 1), 100, c, law(c)) for i, c in enumerate(COMPUTE[:4])]
    verify = RungPoint("v", 9000, 100, COMPUTE[4], None, is_verify=True)
    waiting = sweep_view([*fitted[:3], replace(fitted[3], loss=None), verify])
    assert waiting.fit is None and "3 have finished" in waiting.fit_problem and not waiting.curve
    before = sweep_view([*fitted, verify])
    assert before.fit is not None and before.error_pct is None
    assert before.predicted == pytest.approx(law(COMPUTE[4]), rel=1e-3)
    assert before.curve[0][0] < COMPUTE[0] and before.curve[-1][0] > COMPUTE[4]  # spans the check too
    after = sweep_view([*fitted, replace(verify, loss=law(COMPUTE[4]) * 1.02)])
    assert after.error_pct == pytest.approx(100 * (1.02 - 1) / 1.02, rel=1e-2)


def test_sweep_view_explains_a_failed_fit_instead_of_raising() -> None:
    rising = [RungPoint(f"r{i}", 1, 1, c, 2.0 + 0.1 * i) for i, c in enumerate(COMPUTE[:4])]
    view = sweep_view(rising)
    assert view.fit is None and view.fit_problem.startswith("No power law could be fitted: the loss does not fall")
    assert view.predicted is None and view.curve == []


def test_default_ladder_is_one_budget_over_growing_sizes() -> None:
    rungs = scaling.default_ladder()
    assert 5 <= len(rungs) <= 6
    assert [r.is_verify for r in rungs] == [False] * (len(rungs) - 1) + [True]
    configs = [r.config for r in rungs]
    assert len({(c.model.block_size, c.batch_size, c.max_steps, c.time_budget, c.lr) for c in configs}) == 1
    assert configs[0].time_budget is None and configs[0].max_steps
    assert configs[0].final_eval_batches >= 50 and configs[0].eval_interval >= configs[0].max_steps // 4
    params = [scaling.rung_parameters(c, 65) for c in configs]
    flops = [scaling.rung_flops(c, 65) for c in configs]
    assert params == sorted(params) and len(set(params)) == len(params)
    assert flops == sorted(flops) and flops[-1] / flops[0] > 30  # more than a decade and a half of compute
    assert len({r.name for r in rungs}) == len(rungs)


def test_a_ladder_needs_a_fixed_length() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        scaling.make_ladder([(1, 1, 8)], PRESETS["lesson"])  # timed: sizes would get different token budgets


TINY_LADDER = scaling.make_ladder(
    [(1, 1, 8), (1, 2, 16), (2, 2, 32), (2, 4, 48)],
    replace(PRESETS["tiny"], max_steps=120, warmup_steps=10, eval_interval=120, final_eval_batches=16,
            sample_interval=0, batch_size=16, device="cpu"))


def test_a_tiny_ladder_through_the_run_manager_loses_less_with_size(small_text: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_report, "BENCHMARKS_MD", tmp_path / "benchmarks.md")
    result = bench_scaling.run_ladder(TINY_LADDER, small_text, workers="thread", runs_root=tmp_path / "runs")
    points = [r["point"] for r in result["rows"]]
    losses = [p.loss for p in points]
    assert all(math.isfinite(v) for v in losses)
    # bigger is better: the biggest is best by a clear margin, and the loss falls at most steps up the ladder (the
    # two smallest sizes barely beat counting after 120 steps, and which of them wins varies with the random draws)
    assert losses[-1] == min(losses) and losses[0] > losses[-1] + 0.05, losses
    assert sum(a > b for a, b in zip(losses, losses[1:], strict=False)) >= len(losses) - 2, losses
    assert {p.tokens for p in points} == {120 * 16 * 16}
    view = result["view"]
    assert view.verify is not None and view.verify.loss == losses[-1]
    assert view.fit is not None or view.fit_problem  # three points: a fit, or a reason there is none
