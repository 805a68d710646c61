"""Lesson 8's sampling bench: type a prompt, see the model's next-token probabilities raw (plain softmax) beside
what temperature, top-k and top-p leave of them (`engine.look_inside.sampling.next_token_distribution`), then write text one
token at a time: the model draws (a seeded generator, so the same clicks give the same text) or the learner picks
one of the candidates (`engine.look_inside.sampling.generate_steps` with `forced=`).

The growing text lives in a plain `st.session_state` key that no widget owns (a page switch drops widget state,
not this): the prompt and model it grew from, and every step with the settings it was made under.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from course.widgets import NextTokenProbsParams
from engine.look_inside.sampling import NextToken, generate_steps, next_token_distribution
from ui import model_source, session
from ui.text import escape_md

# Both at least 3:1 against the light (#ffffff) and the dark (#171614) background, so the bars read in either theme
# (tests/ui/test_chart_accessibility.py).
RAW_COLOUR = "#808b96"
KEPT_COLOUR = "#e4572e"
WRITE_MORE = 40  # tokens the "write more" button adds


def _state_key(key: str) -> str:
    return f"{key}-generated"  # owned by no widget: survives page switches


def settings_text(temperature: float, top_k: int | None, top_p: float | None) -> str:
    """The knobs as one short line.

    >>> settings_text(0.0, None, None)
    'temperature 0 (greedy)'
    >>> settings_text(0.8, 5, 0.9)
    'temperature 0.8 · top-k 5 · top-p 0.9'
    """
    parts = ["temperature 0 (greedy)" if temperature == 0 else f"temperature {temperature:g}"]
    if top_k:
        parts.append(f"top-k {top_k}")
    if top_p is not None and top_p < 1:
        parts.append(f"top-p {top_p:g}")
    return " · ".join(parts)


def chart(dist: NextToken) -> go.Figure:
    """Grouped bars per candidate: the plain softmax (grey) and what the knobs left (coloured; 0 = removed)."""
    labels = [f"{c.text}" for c in dist.candidates]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[c.raw for c in dist.candidates], name="raw softmax (temperature 1, nothing removed)",
                marker_color=RAW_COLOUR, text=[f"{c.raw:.0%}" for c in dist.candidates], textposition="outside",
                hovertemplate="%{x}: %{y:.1%} before the knobs<extra></extra>")
    fig.add_bar(x=labels, y=[c.filtered for c in dist.candidates], name="after your settings",
                marker_color=KEPT_COLOUR,
                text=[f"{c.filtered:.0%}" if c.filtered > 0 else "removed" for c in dist.candidates],
                textposition="outside", hovertemplate="%{x}: %{y:.1%} after the knobs<extra></extra>")
    top = max([c.raw for c in dist.candidates] + [c.filtered for c in dist.candidates] + [0.05])
    fig.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=10, b=40),
                      yaxis=dict(title="probability of coming next", tickformat=".0%", range=[0, min(1.0, top) * 1.18]),
                      xaxis=dict(title="next token (␣ = space, ↵ = newline)", type="category"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def chart_text(dist: NextToken) -> str:
    """Every candidate's two bars in words, likeliest first (a screen reader gets what the chart shows).

    >>> from engine.look_inside.sampling import Candidate
    >>> d = NextToken(["a"], 0, 0.8, 1, None, [Candidate(1, "e", 0.6, 1.0), Candidate(2, "␣", 0.3, 0.0)], 1, 0.9, 0)
    >>> chart_text(d)
    'Chart as text, before and after your settings: e 60% → 100%, ␣ 30% → removed.'
    """
    bars = ", ".join(f"{escape_md(c.text)} {c.raw:.0%} → {f'{c.filtered:.0%}' if c.filtered > 0 else 'removed'}"
                     for c in dist.candidates)
    return f"Chart as text, before and after your settings: {bars}."


def _knobs(key: str) -> tuple[float, int | None, float | None]:
    ss = st.session_state
    k = int(ss.get(f"{key}-top-k", 0))
    p = float(ss.get(f"{key}-top-p", 1.0))
    return float(ss.get(f"{key}-temperature", 1.0)), (k or None), (p if p < 1.0 else None)


def _current(key: str, run_dir: str, prompt: str) -> dict[str, Any]:
    """The growing text for this model and prompt; a different model or prompt starts a fresh one."""
    state = st.session_state.get(_state_key(key))
    if not state or state["run_dir"] != run_dir or state["prompt"] != prompt:
        state = {"run_dir": run_dir, "prompt": prompt, "steps": []}
        st.session_state[_state_key(key)] = state
    return state


def _add(key: str, seed: int, forced: int | None = None, n: int = 1) -> None:
    """Button callback: n more tokens, sampled with a seed that depends on the step (reproducible), or the one
    the learner picked. Each step is kept with its probability and the settings it was made under."""
    state = st.session_state.get(_state_key(key))
    if not state:
        return
    model, tokenizer = model_source.load_model(model_source.ModelSource(state["run_dir"], "", False))
    temperature, top_k, top_p = _knobs(key)
    context = state["prompt"] + "".join(s["piece"] for s in state["steps"])
    steps = generate_steps(model, tokenizer, context, n, temperature, top_k, top_p,
                           seed=seed + len(state["steps"]), forced=[forced] if forced is not None else None)
    for step in steps:
        state["steps"].append({"piece": tokenizer.decode([step.id]), "text": step.text, "prob": step.prob,
                               "raw": step.raw, "by": "you" if step.forced else "the model",
                               "settings": settings_text(temperature, top_k, top_p)})


def _clear(key: str) -> None:
    state = st.session_state.get(_state_key(key))
    if state:
        state["steps"] = []


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.sampling:next_token_distribution", "engine.look_inside.sampling:filter_probs")


def render(params: NextTokenProbsParams, key: str) -> None:
    source = model_source.pick(session.learner().id, key=f"{key}-source")
    model, tokenizer = model_source.load_model(source)
    kept = st.session_state.get(_state_key(key))  # after a page switch the box starts from the kept prompt
    start = kept["prompt"] if kept and kept["run_dir"] == source.run_dir else params.prompt
    prompt = st.text_input("Prompt: the text so far", value=start, key=f"{key}-prompt", max_chars=400,
                           help="The model predicts the token that comes after this.")
    left, mid, right = st.columns(3)
    temperature = left.slider("Temperature", 0.0, 2.0, params.temperature, step=0.05, key=f"{key}-temperature",
                              help="The scores are divided by this before the softmax. 0 = always the likeliest.")
    top_k = mid.slider("Top-k (0 = off)", 0, min(50, tokenizer.vocab_size), min(params.top_k, tokenizer.vocab_size),
                       key=f"{key}-top-k", help="Keep only the k likeliest tokens.")
    top_p = right.slider("Top-p (1.0 = off)", 0.05, 1.0, params.top_p, step=0.05, key=f"{key}-top-p",
                         help="Keep the fewest likeliest tokens whose probabilities add up to at least p.")
    if not prompt:
        st.info("Type a few characters of prompt.")
        return
    state = _current(key, source.run_dir, prompt)
    context = prompt + "".join(s["piece"] for s in state["steps"])
    try:
        dist = next_token_distribution(model, tokenizer, context, temperature, top_k or None,
                                       top_p if top_p < 1 else None, show=params.show)
    except ValueError as err:
        st.warning(f"The model cannot read this prompt: {escape_md(str(err))}. A character model only knows the "
                   "characters of its training text.")
        return

    st.markdown(f"**Text so far** ({len(state['steps'])} tokens added · settings: "
                f"{settings_text(temperature, top_k or None, top_p if top_p < 1 else None)})")
    st.code(context, language=None, wrap_lines=True)
    st.markdown(f"**What could come next.** Your settings keep **{dist.kept}** of the {tokenizer.vocab_size} "
                "tokens; the grey bars are the model's own probabilities, the coloured ones what is left to draw from.")
    st.plotly_chart(chart(dist), key=f"{key}-chart", config={"displayModeBar": False})
    st.caption(chart_text(dist))

    b1, b2, b3 = st.columns(3)
    b1.button("Let the model pick", key=f"{key}-sample", type="primary", icon=":material/casino:",
              on_click=_add, args=(key, params.seed), width="stretch",
              help="Draws the next token from the coloured bars, with a fixed seed: the same clicks give the same text.")
    b2.button(f"Let it write {WRITE_MORE} more", key=f"{key}-more", icon=":material/fast_forward:",
              on_click=_add, args=(key, params.seed), kwargs={"n": WRITE_MORE}, width="stretch")
    b3.button("Start over", key=f"{key}-clear", icon=":material/restart_alt:", on_click=_clear, args=(key,),
              width="stretch", disabled=not state["steps"])
    st.caption("Or pick the next token yourself (a removed token cannot be picked):")
    cols = st.columns(len(dist.candidates))
    for col, cand in zip(cols, dist.candidates, strict=True):
        col.button(f"{cand.text}", key=f"{key}-pick-{cand.id}", on_click=_add, args=(key, params.seed),
                   kwargs={"forced": cand.id}, disabled=cand.filtered == 0, width="stretch",
                   help=f"Pick this one: {cand.filtered:.1%} after your settings ({cand.raw:.1%} raw)")

    if state["steps"]:
        with st.expander(f"Each step ({len(state['steps'])}): the token, who chose it, its probability",
                         expanded=len(state["steps"]) <= 12):
            st.dataframe([{"step": i + 1, "token": s["text"], "chosen by": s["by"],
                           "probability": s["prob"], "raw softmax": s["raw"], "settings": s["settings"]}
                          for i, s in enumerate(state["steps"])], hide_index=True, key=f"{key}-steps",
                         column_config={"probability": st.column_config.NumberColumn(
                             "probability (after settings)", format="percent"),
                             "raw softmax": st.column_config.NumberColumn(format="percent")})
