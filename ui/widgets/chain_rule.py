"""Lesson 7: backpropagation by hand. One neuron and its loss drawn as a graph; the learner sets the inputs and
reads every value, every local gradient and every chain-rule product, with torch's autograd beside them
(`engine.transform.chain_rule.backprop`)."""

from __future__ import annotations

import streamlit as st

from course.widgets import ChainRuleParams
from engine.transform.chain_rule import INPUTS, NUDGE, ChainRule, backprop, nudge

LABELS = {"x1": "input x1", "w1": "weight w1", "x2": "input x2", "w2": "weight w2", "b": "bias b",
          "target": "target"}
WEIGHTS = ("w1", "w2", "b")  # what training would change; the inputs and the target are data
# Light boxes with dark text and mid-grey arrows: readable on the light and the dark theme alike.
_STYLE = ('graph [rankdir=LR, bgcolor="transparent", nodesep=0.25, ranksep=0.45]; '
          'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=13, color="#7b8aa6", '
          'fillcolor="#eef2f9", fontcolor="#111827"]; edge [color="#8b97ad", arrowsize=0.7];')
_WEIGHT_FILL = "#fde7c8"  # the weights and the bias: what a training step would move


def dot(r: ChainRule) -> str:
    """The graph as Graphviz DOT: each box shows a value and, under it, the loss's gradient for it.

    >>> "w1 = -0.5" in dot(backprop(2.0, -0.5, 1.0, 1.5, 0.25, 1.0))
    True
    """
    lines = [f"digraph {{ {_STYLE}"]
    for nd in r.nodes:
        head = f"{nd.name} = {nd.value:.4g}" if nd.formula == "input" else f"{nd.name} = {nd.formula}\\n= {nd.value:.4g}"
        fill = f', fillcolor="{_WEIGHT_FILL}"' if nd.name in WEIGHTS else ""
        lines.append(f'"{nd.name}" [label="{head}\\n∂L/∂{nd.name} = {nd.grad:.4g}"{fill}];')
    lines += [f'"{e.child}" -> "{e.parent}";' for e in r.edges]
    lines.append("}")
    return "\n".join(lines)


def backward_rows(r: ChainRule) -> list[dict[str, str]]:
    """The backward pass as a table, one row per edge in the order it is crossed.

    >>> backward_rows(backprop(2.0, -0.5, 1.0, 1.5, 0.25, 1.0))[2]["local gradient"]
    '∂o/∂n = 1 − o² = 0.5966'
    """
    return [{"step": str(i), "back from → to": f"{e.parent} → {e.child}",
             "gradient from above": f"∂L/∂{e.parent} = {e.upstream:.4f}",
             "local gradient": f"{e.local_formula} = {e.local:.4f}",
             "their product": f"∂L/∂{e.child} = {e.product:.4f}"}
            for i, e in enumerate(r.edges, start=1)]


def check_rows(r: ChainRule) -> list[dict[str, str]]:
    return [{"value": nd.name, "chain rule (by hand)": f"{nd.grad:.6f}", "torch autograd": f"{nd.autograd:.6f}"}
            for nd in r.nodes]


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.chain_rule:backprop", "engine.transform.chain_rule:_autograd")


def render(params: ChainRuleParams, key: str) -> None:
    cols = st.columns(3)
    chosen: dict[str, float] = {}
    for i, name in enumerate((*INPUTS, "target")):
        low, high = (-1.0, 1.0) if name == "target" else (-3.0, 3.0)
        start = min(high, max(low, float(getattr(params, name))))
        chosen[name] = cols[i % 3].slider(LABELS[name], low, high, start, step=0.05, key=f"{key}-{name}")
    r = backprop(**chosen)
    loss = r.node("L")
    st.markdown(f"Forward pass: the neuron outputs **o = {r.node('o').value:.4f}** for a target of "
                f"**{chosen['target']:g}**, so the loss is **L = {loss.value:.4f}**. Each box below shows a value and, "
                "under it, the loss's gradient for that value (∂L/∂ of it): how much the loss moves per unit that "
                "value moves. Orange boxes are the weights and the bias, what a training step changes.")
    st.graphviz_chart(dot(r))
    st.markdown("**The backward pass, one arrow at a time.** Start from ∂L/∂L = 1 and walk back: each arrow "
                "multiplies the gradient arriving from above by the operation's own local gradient.")
    st.dataframe(backward_rows(r), hide_index=True, key=f"{key}-steps")
    agree = r.max_difference < 1e-9
    verdict = (f"**torch's autograd agrees** on all {len(r.nodes)} gradients (largest difference "
               f"{r.max_difference:.1e})." if agree else
               f"torch's autograd differs by up to {r.max_difference:.1e}.")
    st.markdown(f"{verdict} It ran the same graph, kept each step of the forward pass, and called `backward()`.")
    with st.expander("Every gradient, by hand and by torch"):
        st.dataframe(check_rows(r), hide_index=True, key=f"{key}-check")

    which = st.radio("Check one gradient by moving its value a little", WEIGHTS, horizontal=True,
                     format_func=LABELS.get, key=f"{key}-nudge")
    before, after = nudge(chosen, which)
    g = r.node(which).grad
    st.markdown(f"Raise **{which}** by {NUDGE:g}: the loss goes from {before:.6f} to {after:.6f}, a change of "
                f"**{after - before:+.6f}**. The gradient predicted {g:.4f} × {NUDGE:g} = **{g * NUDGE:+.6f}**.")
    downhill = "grow" if g < 0 else "shrink"
    st.caption(f"So to lower the loss, a training step moves {which} against its gradient: it should {downhill}. "
               f"An input's gradient (x1, x2) is computed too, but the data is not changed; in a GPT the inputs to "
               "a layer are the outputs of the layer below, and their gradients carry the chain further down.")
