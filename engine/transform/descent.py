"""Gradient descent on one weight: the learning rate's three regimes, small enough to see every step.

The loss here is a bowl, loss(w) = ½·(w − 2)², whose slope (gradient) at w is simply w − 2. One step of plain
gradient descent is `w ← w − lr × (w − 2)`, so the distance to the bottom is multiplied by (1 − lr) each step:

- lr below 1: the factor is between 0 and 1; every step lands on the same side, closer (slowly if lr is tiny).
- lr between 1 and 2: the factor is negative; each step jumps over the bottom to the other side, yet lands closer.
- lr above 2: the factor is below −1; each jump lands further out than it started, and the loss grows: divergence.

A real network has millions of weights and a bumpier landscape, but the same three behaviours show up on its loss
chart (lesson 7's run and its "too high learning rate" button).
"""

from __future__ import annotations

from dataclasses import dataclass

BOTTOM = 2.0  # where the loss is lowest
START = -2.0  # where the weight starts


def bowl_loss(w: float) -> float:
    """loss(w) = ½·(w − 2)²: zero at the bottom, w = 2."""
    return 0.5 * (w - BOTTOM) ** 2


def bowl_gradient(w: float) -> float:
    """The slope of the bowl at w: how much the loss changes per unit of w."""
    return w - BOTTOM


@dataclass(frozen=True)
class DescentPath:
    lr: float
    weights: list[float]  # w after 0, 1, 2, ... steps
    losses: list[float]  # loss at each of those weights
    verdict: str  # "too small", "about right", "overshooting" or "diverging"


def descend(lr: float, steps: int = 12, start: float = START) -> DescentPath:
    """Run `steps` steps of `w ← w − lr × gradient` from `start`.

    >>> [round(w, 3) for w in descend(0.5, steps=3).weights]    # halfway to the bottom each step
    [-2.0, 0.0, 1.0, 1.5]
    >>> descend(0.05).verdict, descend(0.5).verdict, descend(1.6).verdict, descend(2.2).verdict
    ('too small', 'about right', 'overshooting', 'diverging')
    """
    weights = [start]
    for _ in range(steps):
        w = weights[-1]
        weights.append(w - lr * bowl_gradient(w))
    losses = [bowl_loss(w) for w in weights]
    factor = abs(1 - lr)  # how much of the distance to the bottom each step keeps
    if factor >= 1:
        verdict = "diverging" if lr > 1 else "too small"
    elif lr > 1:
        verdict = "overshooting"
    elif factor ** steps > 0.25:  # after every step, still a quarter of the way out or more
        verdict = "too small"
    else:
        verdict = "about right"
    return DescentPath(lr=lr, weights=weights, losses=losses, verdict=verdict)
