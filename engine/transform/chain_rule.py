"""Backpropagation by hand on a graph small enough to follow: one neuron and its loss, with every local gradient.

The graph (micrograd-sized, after Karpathy's micrograd): two inputs, their weights and a bias make one neuron,

    a = x1·w1      c = x2·w2      n = a + c + b      o = tanh(n)      e = o − target      L = e²

Backpropagation walks it from the loss back to the inputs. Each operation knows only its own *local* gradient (how
its output moves when one input moves: ∂a/∂w1 = x1, ∂o/∂n = 1 − o², ∂L/∂e = 2e), and the **chain rule** says the
loss's gradient for an input is the gradient arriving from above times that local gradient. `backprop` does exactly
that, one multiplication per edge, and then asks torch's autograd for the same gradients: they agree, because
autograd does the same walk over the graph torch recorded in the forward pass. A real GPT's backward pass is this,
over a few million numbers instead of eleven.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

INPUTS = ("x1", "w1", "x2", "w2", "b")  # the leaves the learner sets (the target is fixed data, not learned)
NUDGE = 1e-3  # how far `nudge` moves a weight to check its gradient against a real change of the loss


@dataclass(frozen=True)
class Node:
    name: str
    formula: str  # how the forward pass computes it ("x1·w1"), or "input" for a leaf
    value: float  # forward pass
    grad: float  # ∂L/∂node, by the chain rule below
    autograd: float  # ∂L/∂node, as torch's autograd computes it


@dataclass(frozen=True)
class Edge:
    """One input of one operation, and the step of the backward pass that crosses it."""

    child: str  # the operation's input
    parent: str  # the operation's output
    local_formula: str  # "∂n/∂a = 1"
    local: float  # that local gradient's value here
    upstream: float  # ∂L/∂parent, already known when the backward pass reaches this edge
    product: float  # upstream × local: this edge's share of ∂L/∂child


@dataclass(frozen=True)
class ChainRule:
    nodes: list[Node]  # in forward order: inputs first, the loss last
    edges: list[Edge]  # in backward order: from the loss down to the inputs
    max_difference: float  # largest |chain rule − autograd| over every node

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def backprop(x1: float, w1: float, x2: float, w2: float, b: float, target: float) -> ChainRule:
    """Show-me function: the forward pass, the backward pass by the chain rule, and torch's autograd beside it.

    >>> r = backprop(2.0, -0.5, 1.0, 1.5, 0.25, 1.0)
    >>> round(r.node("n").value, 4), round(r.node("L").value, 4), r.max_difference < 1e-6
    (0.75, 0.1331, True)
    >>> [e.local_formula for e in r.edges][:3]
    ['∂L/∂e = 2·e', '∂e/∂o = 1', '∂o/∂n = 1 − o²']
    """
    # forward pass, in plain floats (what the learner reads)
    a, c = x1 * w1, x2 * w2
    n = a + c + b
    o = math.tanh(n)
    e = o - target
    loss = e * e

    # backward pass: start at ∂L/∂L = 1 and multiply by one local gradient per edge, from the top down
    grad = {"L": 1.0}
    edges: list[Edge] = []

    def cross(child: str, parent: str, local_formula: str, local: float) -> None:
        upstream = grad[parent]
        edges.append(Edge(child, parent, local_formula, local, upstream, upstream * local))
        grad[child] = grad.get(child, 0.0) + upstream * local  # a value used twice would add both shares

    cross("e", "L", "∂L/∂e = 2·e", 2 * e)
    cross("o", "e", "∂e/∂o = 1", 1.0)
    cross("n", "o", "∂o/∂n = 1 − o²", 1 - o * o)
    cross("a", "n", "∂n/∂a = 1", 1.0)
    cross("c", "n", "∂n/∂c = 1", 1.0)
    cross("b", "n", "∂n/∂b = 1", 1.0)
    cross("x1", "a", "∂a/∂x1 = w1", w1)
    cross("w1", "a", "∂a/∂w1 = x1", x1)
    cross("x2", "c", "∂c/∂x2 = w2", w2)
    cross("w2", "c", "∂c/∂w2 = x2", x2)

    auto = _autograd(x1, w1, x2, w2, b, target)
    values = {"x1": x1, "w1": w1, "x2": x2, "w2": w2, "b": b, "a": a, "c": c, "n": n, "o": o, "e": e, "L": loss}
    formulas = {"a": "x1·w1", "c": "x2·w2", "n": "a + c + b", "o": "tanh(n)", "e": f"o − {target:g}", "L": "e²"}
    nodes = [Node(name, formulas.get(name, "input"), values[name], grad[name], auto[name]) for name in values]
    return ChainRule(nodes, edges, max(abs(nd.grad - nd.autograd) for nd in nodes))


def _autograd(x1: float, w1: float, x2: float, w2: float, b: float, target: float) -> dict[str, float]:
    """The same graph in torch, float64, every intermediate kept (`retain_grad`), and `backward()` on the loss."""
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in zip(INPUTS, (x1, w1, x2, w2, b), strict=True)}
    a = leaves["x1"] * leaves["w1"]
    c = leaves["x2"] * leaves["w2"]
    n = a + c + leaves["b"]
    o = torch.tanh(n)
    e = o - target
    loss = e * e
    inner = {"a": a, "c": c, "n": n, "o": o, "e": e, "L": loss}
    for t in inner.values():
        t.retain_grad()
    loss.backward()
    return {k: float(t.grad) for k, t in {**leaves, **inner}.items()}


def nudge(params: dict[str, float], name: str, by: float = NUDGE) -> tuple[float, float]:
    """The loss before and after moving one input by `by`: what the gradient predicts, measured.

    The gradient ∂L/∂w says the loss changes by about gradient × by; the smaller `by`, the closer.

    >>> before, after = nudge({"x1": 2.0, "w1": -0.5, "x2": 1.0, "w2": 1.5, "b": 0.25, "target": 1.0}, "w1")
    >>> g = backprop(2.0, -0.5, 1.0, 1.5, 0.25, 1.0).node("w1").grad
    >>> abs((after - before) - g * NUDGE) < 1e-5
    True
    """
    moved = {**params, name: params[name] + by}
    return _loss(params), _loss(moved)


def _loss(p: dict[str, float]) -> float:
    return (math.tanh(p["x1"] * p["w1"] + p["x2"] * p["w2"] + p["b"]) - p["target"]) ** 2
