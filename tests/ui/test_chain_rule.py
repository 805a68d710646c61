"""Lesson 7's backpropagation by hand (engine.transform.chain_rule, ui/widgets/chain_rule.py): the chain rule's
products equal torch's autograd for any inputs, the cases the card points at behave as it says, and the widget
follows its sliders."""

from __future__ import annotations

import random

from engine.transform.chain_rule import NUDGE, backprop, nudge
from tests.ui.conftest import no_errors, texts, widget_app
from ui.widgets.chain_rule import backward_rows, dot


def test_the_chain_rule_by_hand_equals_autograd_for_any_inputs() -> None:
    rng = random.Random(7)
    for _ in range(50):
        x1, w1, x2, w2, b = (rng.uniform(-3, 3) for _ in range(5))
        r = backprop(x1, w1, x2, w2, b, rng.uniform(-1, 1))
        assert r.max_difference < 1e-12
        assert r.node("L").grad == 1.0 and len(r.edges) == 10
        w1_path = [e for e in r.edges if e.child in ("e", "o", "n", "a", "w1")]  # the product along the path to w1
        product = 1.0
        for e in w1_path:
            product *= e.local
        assert abs(product - r.node("w1").grad) < 1e-12


def test_a_zero_input_stops_the_gradient_and_a_saturated_tanh_all_but_stops_it() -> None:
    assert backprop(0.0, -0.5, 1.0, 1.5, 0.25, 1.0).node("w1").grad == 0.0
    lively = backprop(2.0, -0.5, 1.0, 1.5, 0.0, -1.0)
    pinned = backprop(2.0, -0.5, 1.0, 1.5, 3.0, -1.0)
    assert pinned.node("L").value > lively.node("L").value  # more wrong ...
    assert abs(pinned.node("w1").grad) < abs(lively.node("w1").grad) / 20  # ... and far less gradient


def test_a_nudge_changes_the_loss_by_the_gradient_times_the_nudge() -> None:
    params = {"x1": 1.2, "w1": 0.7, "x2": -0.4, "w2": 2.0, "b": -0.3, "target": 0.5}
    r = backprop(**params)
    for name in ("w1", "w2", "b"):
        before, after = nudge(params, name)
        assert abs((after - before) - r.node(name).grad * NUDGE) < 1e-5


def test_the_graph_and_the_table_show_the_backward_pass() -> None:
    r = backprop(2.0, -0.5, 1.0, 1.5, 0.25, 1.0)
    graph = dot(r)
    assert graph.count("->") == 10 and "∂L/∂w1 = -0.8707" in graph
    rows = backward_rows(r)
    assert rows[0]["back from → to"] == "L → e" and rows[-1]["back from → to"] == "c → w2"


def test_the_widget_follows_its_sliders(db) -> None:
    at = widget_app("chain_rule")
    no_errors(at)
    assert "L = 0.1331" in texts(at) and "torch's autograd agrees" in texts(at)
    assert at.get("graphviz_chart")
    at.slider(key="harness-x1").set_value(0.0).run()
    at.radio(key="harness-nudge").set_value("w1").run()
    no_errors(at)
    assert "The gradient predicted 0.0000 × 0.001 = **+0.000000**" in texts(at)
