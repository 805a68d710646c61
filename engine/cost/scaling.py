"""Lesson 9's scaling sweep: a ladder of model sizes trained on the same data for the same number of tokens, a
power law with an irreducible term fitted to their final losses against training compute, and a prediction for
the next size up, which is then trained to check it (the "verifying run").

The law is Kaplan et al. 2020's and Hoffmann et al. 2022's form, with compute on the x axis: L(C) = E + A * C^(-alpha),
where E is the loss no model size reaches on this data and budget, and A and alpha say how fast the rest falls.
With the token budget fixed, compute grows with the model's size alone, so the sweep asks how much better a bigger
model gets on the same data. Everything here is plain data: the UI submits `default_ladder()`'s configs through
the run manager and hands the finished rungs to `sweep_view`, which returns the points, the fitted curve and the
prediction to draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from engine.cost.flops import count_parameters, training_flops
from engine.train.config import PRESETS, TrainConfig

# ---------------------------------------------------------------------------------------------- the ladder


@dataclass(frozen=True)
class Rung:
    """One model size of the sweep. `is_verify`: the size the fit predicts, trained last and left out of the fit."""

    name: str
    config: TrainConfig
    is_verify: bool = False


# (n_layer, n_head, n_embd): widths and depths growing, ~5k to ~345k parameters with 65 characters. The last is the
# verifying size, one step beyond the fitted ones. Small enough that the whole ladder trains within the 5 minutes
# bench/scaling.py allows on 2 CPU cores, and spread enough that the law fitted to the first four predicts the fifth
# closely (docs/benchmarks.md, "Scaling sweep").
LADDER_SHAPES: tuple[tuple[int, int, int], ...] = ((1, 1, 16), (2, 2, 32), (2, 2, 48), (3, 4, 64), (3, 4, 96))
# Every rung: 800 steps x 24 sequences x 64 tokens = 1.2M tokens (about 1.2 passes over the training split). The same
# tokens in fewer, larger steps leave the two-layer sizes behind and the fit worse (docs/benchmarks.md).
LADDER_STEPS = 800

# The `tiny` preset's style (AdamW, float32, fixed length), at the lesson's context and batch. Evaluated only at
# the end, but thoroughly: 50 batches of 1,536 tokens, about 70% of the validation split, so the final losses are
# precise enough to fit (the same seed gives the same losses). One thread, as `tiny`: two threads are faster on a
# quiet machine, but with another process on the cores (the web server, a browser, a second learner) the second
# thread waits for the first at every operation and a rung takes many times longer; one thread only ever slows down
# by the share it loses (docs/benchmarks.md's notes).
LADDER_BASE = PRESETS["tiny"].with_changes(
    block_size=64, batch_size=24,
    lr=3e-3, warmup_steps=40,
    max_steps=LADDER_STEPS, time_budget=None,
    eval_interval=200, eval_batches=4, final_eval_batches=50,
    sample_interval=LADDER_STEPS, sample_tokens=60,  # a sample at the start and one at the end
    threads=1,
)


def make_ladder(shapes: Sequence[tuple[int, int, int]], base: TrainConfig) -> list[Rung]:
    """Rungs of the given shapes on one base config (same data, batch, context and steps); the last verifies.

    >>> [(r.name, r.config.model.n_embd, r.is_verify) for r in make_ladder([(1, 1, 8), (1, 2, 16)], PRESETS["tiny"])]
    [('1 layer x 8 wide', 8, False), ('1 layer x 16 wide', 16, True)]
    """
    if base.max_steps is None or base.time_budget is not None:
        raise ValueError("a scaling ladder trains every rung for the same number of steps: set max_steps, "
                         "and no time budget")
    rungs = []
    for i, (n_layer, n_head, n_embd) in enumerate(shapes):
        name = f"{n_layer} layer{'s' if n_layer > 1 else ''} x {n_embd} wide"
        rungs.append(Rung(name, base.with_changes(n_layer=n_layer, n_head=n_head, n_embd=n_embd),
                          is_verify=i == len(shapes) - 1))
    return rungs


def default_ladder() -> list[Rung]:
    """The course's ladder: four sizes to fit and a fifth to verify (LADDER_SHAPES, LADDER_BASE)."""
    return make_ladder(LADDER_SHAPES, LADDER_BASE)


def planned_tokens(config: TrainConfig) -> int:
    """Tokens a fixed-length run trains on: steps x batch x context.

    >>> planned_tokens(PRESETS["tiny"])
    7680
    """
    if config.max_steps is None:
        raise ValueError("only a fixed-length run (max_steps) has a planned token count")
    return config.max_steps * config.batch_size * config.model.block_size


def rung_flops(config: TrainConfig, vocab_size: int, tokens: float | None = None) -> float:
    """Training FLOPs of a rung (engine.cost.flops): per-token FLOPs x tokens (planned ones unless given)."""
    return training_flops(config.model_config(vocab_size), planned_tokens(config) if tokens is None else tokens)


def rung_parameters(config: TrainConfig, vocab_size: int) -> int:
    return count_parameters(config.model_config(vocab_size)).total


# ---------------------------------------------------------------------------------------------- the fit


@dataclass(frozen=True)
class PowerLawFit:
    """L(C) = E + A * C^(-alpha), fitted to (compute, loss) points. `residuals`: measured minus fitted loss."""

    E: float
    A: float
    alpha: float
    compute: tuple[float, ...]
    loss: tuple[float, ...]
    residuals: tuple[float, ...]

    def predict(self, compute: float) -> float:
        """The fitted loss at `compute` FLOPs."""
        return self.E + self.A * compute ** -self.alpha

    def in_words(self) -> str:
        """The law as a sentence for a beginner (a floor E near zero is said plainly: none in sight yet).

        >>> PowerLawFit(1.5, 20.0, 0.1, (), (2.0,), ()).in_words()
        'loss = 1.50 + 20 × C^(-0.100): each time compute grows 10×, the part of the loss above 1.50 shrinks to 0.79 of what it was; 1.50 is the floor E no model size gets below on this data'
        >>> PowerLawFit(0.0, 9.0, 0.05, (), (2.0,), ()).in_words()
        'loss = 0.00 + 9 × C^(-0.050): each time compute grows 10×, the loss shrinks to 0.89 of what it was; the fit found no floor E yet (it put it at 0): over these sizes the loss falls as a plain power law'
        """
        head = f"loss = {self.E:.2f} + {self.A:.3g} × C^(-{self.alpha:.3f}): each time compute grows 10×, "
        factor = f"{10 ** -self.alpha:.2f}"
        if self.loss and self.E < 0.05 * min(self.loss):
            return (head + f"the loss shrinks to {factor} of what it was; the fit found no floor E yet (it put it "
                    f"at {self.E:.0f}): over these sizes the loss falls as a plain power law")
        return (head + f"the part of the loss above {self.E:.2f} shrinks to {factor} of what it was; {self.E:.2f} is "
                "the floor E no model size gets below on this data")


def _log_model(x: np.ndarray, e: float, a: float, alpha: float) -> np.ndarray:
    # log of E + a * x^-alpha, with x = C / C0 (so a stays near the losses' scale and the fit is well conditioned)
    return np.log(e + a * np.power(x, -alpha))


def fit_power_law(compute: Sequence[float], loss: Sequence[float]) -> PowerLawFit:
    """Fit L(C) = E + A * C^(-alpha) by bounded non-linear least squares on log loss (scipy's curve_fit).

    Robust because: compute is rescaled by its smallest value; residuals are taken on log loss (relative errors,
    so no point dominates); E is bounded to [0, min(loss)) and alpha to (0, 5]; several starting values of E are
    tried and the best fit kept. Raises ValueError with a reason a learner can read when there are too few points,
    a point is not a positive finite number, the losses do not fall as compute grows, or no fit converges.

    >>> fit_power_law([1e9, 1e10], [3.0, 2.5])
    Traceback (most recent call last):
    ...
    ValueError: a fit with three unknowns (E, A, alpha) needs at least 3 finished sizes, not 2
    >>> fit_power_law([1e9, 1e10, 1e11], [2.0, 2.2, 2.4])
    Traceback (most recent call last):
    ...
    ValueError: the loss does not fall as compute grows (2.00, 2.20, 2.40), so no power law describes it
    >>> fit = fit_power_law([1e9, 1e10, 1e11, 1e12], [2.0 + 5 * c ** -0.1 for c in (1e9, 1e10, 1e11, 1e12)])
    >>> round(fit.E, 3), round(fit.alpha, 3), round(fit.predict(1e13), 4)
    (2.0, 0.1, 2.2506)
    """
    c = np.asarray(compute, dtype=float)
    y = np.asarray(loss, dtype=float)
    if c.shape != y.shape:
        raise ValueError(f"{len(c)} compute values but {len(y)} losses")
    if len(c) < 3:
        raise ValueError(f"a fit with three unknowns (E, A, alpha) needs at least 3 finished sizes, not {len(c)}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(y)) and np.all(c > 0) and np.all(y > 0)):
        raise ValueError("every compute and loss must be a positive finite number")
    order = np.argsort(c)
    c, y = c[order], y[order]
    slope = np.polyfit(np.log(c), np.log(y), 1)[0]
    if slope >= 0:
        shown = ", ".join(f"{v:.2f}" for v in y)
        raise ValueError(f"the loss does not fall as compute grows ({shown}), so no power law describes it")
    x = c / c[0]
    floor = float(y.min())
    best: tuple[float, np.ndarray] | None = None
    for share in (0.0, 0.5, 0.8, 0.95):  # starting guesses for E, as a share of the smallest loss
        e0 = share * floor
        alpha0 = min(4.0, max(1e-3, -np.polyfit(np.log(x), np.log(y - e0), 1)[0]))
        a0 = max(1e-6, float(y[0] - e0))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                params, _ = curve_fit(_log_model, x, np.log(y), p0=[e0, a0, alpha0],
                                      bounds=([0.0, 0.0, 1e-6], [floor * (1 - 1e-9), np.inf, 5.0]), maxfev=20_000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((_log_model(x, *params) - np.log(y)) ** 2))
        if math.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, params)
    if best is None:
        raise ValueError("the fit did not converge from any starting point: the points do not follow one power law")
    e, a, alpha = (float(v) for v in best[1])
    if a <= 0:
        raise ValueError("the fit found no part of the loss that falls with compute")
    big_a = a * float(c[0]) ** alpha  # back from x = C / C0 to C
    fit = PowerLawFit(e, big_a, alpha, tuple(float(v) for v in c), tuple(float(v) for v in y), ())
    return replace(fit, residuals=tuple(float(v - fit.predict(ci)) for ci, v in zip(c, y, strict=True)))


# ---------------------------------------------------------------------------------------------- show me


@dataclass(frozen=True)
class RungPoint:
    """A rung as the sweep's chart sees it: its size, its compute, and its final validation loss once finished."""

    name: str
    params: int
    tokens: int
    flops: float
    loss: float | None  # None until the rung has finished
    is_verify: bool = False


@dataclass(frozen=True)
class SweepView:
    """What the UI draws: the fitted sizes, the fitted curve, the prediction and (once trained) the verifying run."""

    points: list[RungPoint]  # the fitted sizes that have finished
    verify: RungPoint | None  # the verifying size (its loss None until it has trained)
    fit: PowerLawFit | None
    fit_problem: str | None  # why there is no fit yet, or why it failed, in words
    curve: list[tuple[float, float]]  # (FLOPs, fitted loss) spanning the points and the verifying size
    predicted: float | None  # the fitted loss at the verifying size's compute
    error_pct: float | None  # (measured - predicted) / measured * 100, once the verifying run has trained


def sweep_view(rungs: Sequence[RungPoint], curve_points: int = 60) -> SweepView:
    """Turn the rungs (finished or not) into the chart's data. The fit waits for every fitted size.

    >>> pts = [RungPoint(f"r{i}", 0, 0, c, 2.0 + 5 * c ** -0.1) for i, c in enumerate((1e9, 1e10, 1e11, 1e12))]
    >>> view = sweep_view(pts + [RungPoint("v", 0, 0, 1e13, 2.25, is_verify=True)])
    >>> round(view.predicted, 3), round(view.error_pct, 2), len(view.curve)
    (2.251, -0.03, 60)
    >>> sweep_view(pts[:2] + [RungPoint("r2", 0, 0, 1e11, None)]).fit_problem
    'The fit waits for all 3 sizes: 2 have finished.'
    """
    fitted = [r for r in rungs if not r.is_verify]
    verify = next((r for r in rungs if r.is_verify), None)
    done = [r for r in fitted if r.loss is not None and math.isfinite(r.loss)]
    fit, problem = None, None
    if len(done) < len(fitted):
        problem = f"The fit waits for all {len(fitted)} sizes: {len(done)} have finished."
    else:
        try:
            fit = fit_power_law([r.flops for r in done], [r.loss for r in done])
        except ValueError as err:
            problem = f"No power law could be fitted: {err}."
    curve: list[tuple[float, float]] = []
    predicted = error = None
    if fit is not None:
        lo = min(r.flops for r in done) / 1.5
        hi = max([r.flops for r in done] + ([verify.flops] if verify else [])) * 1.5
        curve = [(float(c), fit.predict(float(c))) for c in np.geomspace(lo, hi, curve_points)]
        if verify is not None:
            predicted = fit.predict(verify.flops)
            if verify.loss is not None and math.isfinite(verify.loss):
                error = (verify.loss - predicted) / verify.loss * 100
    return SweepView(done, verify, fit, problem, curve, predicted, error)
