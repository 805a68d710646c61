"""Generating text as a server does, timed (lesson 8): the prompt's prefill, then decode one token at a time, with
the key-value cache and without it, on the learner's lesson-7 run or the reference model
(`engine.cost.inference.inference_cost`).

Timing is a measurement, so it runs when the learner presses the button, not on every rerun; the result is kept in
a plain `st.session_state` key (no widget owns it) under the inputs it was measured with, so it stays on screen
while the page reruns and is dropped when the model, the prompt or the length changes. Every number on screen
comes from that result: times measured, FLOPs and bytes counted from the model's shape.
"""

from __future__ import annotations

import statistics

import plotly.graph_objects as go
import streamlit as st

from course.widgets import InferenceCostParams
from engine import number_format as fmt
from engine.cost.inference import InferenceCost, inference_cost
from ui import model_source, session
from ui.text import escape_md

# Both at least 3:1 against the light (#ffffff) and the dark (#171614) background (the rule of
# tests/ui/test_chart_accessibility.py; tests/ui/test_inference_cost.py checks these two).
CACHED_COLOUR = "#e4572e"
UNCACHED_COLOUR = "#808b96"
ROUNDS = 3  # each time shown is the fastest of this many runs
MEASURES = ("time per token (measured)", "FLOPs per token (counted)")


def _state_key(key: str) -> str:
    return f"{key}-timing"  # owned by no widget: {"inputs": (...), "cost": InferenceCost}


def ms(seconds: float) -> str:
    """Milliseconds, 2 significant figures (3 from 10 ms).

    >>> ms(0.000613), ms(0.0123), ms(0.25)
    ('0.61 ms', '12.3 ms', '250 ms')
    """
    x = seconds * 1000
    return f"{x:.2g} ms" if x < 10 else f"{x:,.3g} ms" if x < 100 else f"{x:,.0f} ms"


def token_numbers(cost: InferenceCost) -> list[int]:
    """The x axis: the number of each token the decode steps write (the prefill wrote token 1)."""
    return list(range(2, cost.steps + 2))


def window_fills(cost: InferenceCost) -> int | None:
    """The token number at which the text first fills the model's window (None: it never did)."""
    return next((n for n, c in zip(token_numbers(cost), cost.context, strict=True) if c == cost.block_size), None)


def time_axis_top(cost: InferenceCost) -> float | None:
    """Where the time axis stops (seconds), so a few spikes from a busy machine do not squash the lines: twice the
    upper quartile of the uncached times; None when every time fits under it.

    >>> from dataclasses import replace
    >>> time_axis_top(_example()) is None, time_axis_top(replace(_example(), cached_s=[0.001, 0.5, 0.001]))
    (True, 0.005)
    """
    top = 2 * statistics.quantiles(cost.uncached_s, n=4, method="inclusive")[2]
    return top if max(cost.cached_s + cost.uncached_s) > top else None


def chart(cost: InferenceCost, measure: str = MEASURES[0]) -> go.Figure:
    """Per decode step, with the cache and without it: the measured time, or the counted FLOPs."""
    timed = measure == MEASURES[0]
    x = token_numbers(cost)
    fig = go.Figure()
    lines = (("without the cache: the whole text read again", UNCACHED_COLOUR,
              cost.uncached_s if timed else cost.flops_uncached, [f"{c} positions computed" for c in cost.context]),
             ("with the cache: only the new token", CACHED_COLOUR, cost.cached_s if timed else cost.flops_cached,
              ["1 position computed" if n == 1 else f"cache rebuilt: {n} positions computed" for n in cost.computed]))
    for name, colour, values, notes in lines:
        fig.add_scatter(x=x, y=[v * 1000 for v in values] if timed else values, name=name, mode="lines",
                        line=dict(color=colour, width=2), customdata=notes,
                        hovertemplate="%{y:.3g} " + ("ms" if timed else "FLOPs") + ", %{customdata}<extra></extra>")
    rebuilt = [i for i, n in enumerate(cost.computed) if n > 1]
    if rebuilt:  # the spikes the cache has by design, told apart from a busy machine's
        values = cost.cached_s if timed else cost.flops_cached
        fig.add_scatter(x=[x[i] for i in rebuilt], y=[values[i] * (1000 if timed else 1) for i in rebuilt],
                        name="cache rebuilt (the window slid on)", mode="markers", hoverinfo="skip",
                        marker=dict(color=CACHED_COLOUR, size=9, symbol="circle-open", line=dict(width=2)))
    full = window_fills(cost)
    if full is not None:
        fig.add_vline(x=full, line=dict(color=UNCACHED_COLOUR, dash="dot", width=1),
                      annotation_text=f"window full ({cost.block_size} tokens)", annotation_position="top left")
    top = time_axis_top(cost) if timed else None
    fig.update_layout(
        height=360, margin=dict(l=10, r=10, t=30, b=40), hovermode="x unified",
        xaxis=dict(title="token number (the prefill wrote token 1)"),
        yaxis=dict(title="milliseconds for this token" if timed else "FLOPs for this token", rangemode="tozero",
                   range=None if top is None else [0, top * 1000]),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


def _full_window(cost: InferenceCost) -> list[int]:
    """Steps where the uncached model reads its whole window (or the longest text it reached)."""
    longest = max(cost.context)
    return [i for i, c in enumerate(cost.context) if c == longest]


def chart_text(cost: InferenceCost) -> str:
    """The chart in words (a screen reader gets what the lines show): medians, as single timings are noisy.

    >>> print(chart_text(_example()))
    Chart as text: with the cache a token took 1 ms (median), the same from the first token to the last; without it, 1 ms for the first decoded token and 3 ms (median) once the model read 3 tokens.
    """
    cached = statistics.median(cost.cached_s[i] for i in cost.one_position_steps)
    full = statistics.median(cost.uncached_s[i] for i in _full_window(cost))
    return (f"Chart as text: with the cache a token took {ms(cached)} (median), the same from the first token to the "
            f"last; without it, {ms(cost.uncached_s[0])} for the first decoded token and {ms(full)} (median) once "
            f"the model read {max(cost.context)} tokens.")


def overhead_text(cost: InferenceCost) -> str:
    """How much more arithmetic the uncached step did at the longest text, against how much longer it took.

    >>> print(overhead_text(_example()))
    Reading 3 tokens, a step without the cache does **2.5×** the arithmetic of a cached one and took **3×** as long.
    """
    full = _full_window(cost)
    one = cost.one_position_steps
    work = statistics.median(cost.flops_uncached[i] for i in full) / statistics.median(cost.flops_cached[i] for i in one)
    took = statistics.median(cost.uncached_s[i] for i in full) / statistics.median(cost.cached_s[i] for i in one)
    return (f"Reading {max(cost.context)} tokens, a step without the cache does **{work:.2g}×** the arithmetic of a "
            f"cached one and took **{took:.2g}×** as long.")


def _example() -> InferenceCost:
    """A hand-made result for the doctests: 3 decode steps, the text growing from 1 to 3 tokens."""
    return InferenceCost(
        prompt_tokens=1, dropped=0, new_tokens=4, text="abc", same_tokens=True, prefill_s=0.001,
        cached_s=[0.001, 0.001, 0.001], uncached_s=[0.001, 0.002, 0.003], context=[1, 2, 3], computed=[1, 1, 1],
        flops_cached=[100, 100, 100], flops_uncached=[100, 180, 250], prefill_flops=100, parameters=40, weights=50,
        bytes_per_weight=4, dtype="float32", n_layer=1, n_embd=4, block_size=8, rounds=1, threads=1, device="cpu")


def _draw(cost: InferenceCost, key: str) -> None:
    same = ("the same tokens both ways" if cost.same_tokens else
            "with and without the cache the text differs: float rounding tipped a draw, the timing still holds")
    st.markdown(f"**What it wrote** ({cost.new_tokens} new tokens, {same}):")
    st.code(cost.text, language=None, wrap_lines=True)

    st.markdown("**Tokens per second**")
    a, b, c, d = st.columns(4)
    a.metric("Prefill", fmt.rate(cost.prefill_tokens_per_s),
             help=f"The {cost.prompt_tokens}-token prompt read in one forward pass: {ms(cost.prefill_s)}.")
    b.metric("Decode, cached", fmt.rate(cost.cached_tokens_per_s),
             help=f"{cost.steps} tokens written one at a time, each computing only the new position.")
    c.metric("Decode, no cache", fmt.rate(cost.uncached_tokens_per_s),
             help=f"The same {cost.steps} tokens, the whole text read again for each one.")
    d.metric("Cache speed-up", f"{cost.speedup:.2g}×",
             help="Decode time without the cache divided by decode time with it.")

    measure = st.radio("Chart", MEASURES, horizontal=True, key=f"{key}-measure")
    st.plotly_chart(chart(cost, measure), key=f"{key}-chart", config={"displayModeBar": False})
    top = time_axis_top(cost) if measure == MEASURES[0] else None
    cut = "" if top is None else (
        f" {sum(t > top for t in cost.cached_s + cost.uncached_s)} times above {ms(top)} run off the top of the "
        "chart: moments when this machine was busy with other work.")
    st.caption(chart_text(cost) + cut)
    rebuilds = sum(n > 1 for n in cost.computed)
    spikes = (f" It jumps {rebuilds} time{'s' if rebuilds > 1 else ''} by design (the circles): where the window "
              "dropped its oldest quarter and the cache was built again over the rest. Other bumps, on either line, "
              "are moments when the machine was busy elsewhere." if rebuilds else "")
    st.markdown(
        f"Without the cache the model reads the whole text again for every token, so its work grows with the text "
        f"until the text fills the model's {cost.block_size}-token window (after that the window drops its oldest "
        f"quarter and grows again). With the cache each token computes one new position over the stored keys and "
        f"values, so its line stays flat.{spikes} {overhead_text(cost)} A model this small spends much of each step on fixed costs (starting the pass, "
        f"handling small tensors), not arithmetic; in a large model the arithmetic and the memory traffic are "
        f"nearly all of it, and the cache saves far more.")

    full = max(cost.context)
    full_flops = statistics.median(cost.flops_uncached[i] for i in _full_window(cost))
    st.markdown(
        f"**Arithmetic: about 2N FLOPs per token.** Writing a token is one forward pass: each weight does one "
        f"multiply and one add, **2 FLOPs per parameter**. This model has N = **{fmt.count(cost.parameters)}** "
        f"parameters outside its embeddings, so 2N = **{fmt.si(2 * cost.parameters, 'FLOP')}**; with attention over "
        f"the text so far and the output layer, a step with the cache averaged "
        f"**{fmt.si(cost.decode_flops, 'FLOP')}**. Without the cache, a step reading {full} tokens costs "
        f"**{fmt.si(full_flops, 'FLOP')}**: it redoes every earlier position. (Training's 6 per parameter from "
        f"lesson 2 adds the backward pass.)")
    decode_rate = cost.decode_flops / statistics.median(cost.cached_s[i] for i in cost.one_position_steps)
    st.markdown(
        f"**Memory: every weight, every token.** To write one token the model reads all "
        f"**{fmt.count(cost.weights)}** weights once, at **{cost.bytes_per_weight} bytes** each ({cost.dtype}): "
        f"**{fmt.file_size(cost.weight_bytes)}** per token, plus "
        f"{fmt.file_size(round(cost.cache_bytes))} of cached keys and values. For that it does "
        f"{fmt.si(cost.decode_flops, 'FLOP')}: **{cost.decode_intensity:.2g} FLOPs per byte read**. The prefill reads "
        f"the same weights once for all {cost.prompt_tokens} prompt positions: "
        f"**{cost.prefill_intensity:.2g} FLOPs per byte**, and more for a longer prompt. A GPU's processors can do "
        f"many operations in the time its memory delivers one byte, so while it decodes one text they mostly wait "
        f"for weights to arrive: **decoding is limited by memory, not arithmetic**. Measured here, the prefill did "
        f"{fmt.si(cost.prefill_flops / cost.prefill_s, 'FLOP/s')} and a decode step "
        f"{fmt.si(decode_rate, 'FLOP/s')}.")
    st.markdown(
        f"**What this means for serving.** Each token a user receives costs one full read of the weights "
        f"({fmt.file_size(cost.weight_bytes)} here; gigabytes for a model with billions of parameters). So servers "
        f"**batch** users: one decode step writes the next token for many texts at once, reading the weights once "
        f"for the whole batch. The arithmetic grows with the batch, the weight reads do not, so until the "
        f"arithmetic catches up, extra users cost little extra time. And a **smaller model** is cheaper to serve "
        f"per token: fewer weights to read and fewer FLOPs. That is why labs train small models on far more tokens "
        f"than a bigger model would need for the same loss: the extra training is paid once, the savings come with "
        f"every token served (lesson 9 comes back to this).")
    dropped = f" The prompt was cut to its last {cost.prompt_tokens} tokens ({cost.dropped} dropped)." if cost.dropped else ""
    threads = "thread" if cost.threads == 1 else "threads"
    st.caption(f"Each time is the fastest of {cost.rounds} runs after a warm-up, on {cost.threads} "
               f"{cost.device.upper()} {threads}, {cost.dtype}. This machine may be busy with other work, so times "
               f"move from press to press; the FLOPs and bytes are counted from the model's shape.{dropped}")


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.cost.inference:inference_cost", "engine.transform.model:GPT.forward_cached",
               "engine.cost.inference:forward_flops")


def render(params: InferenceCostParams, key: str) -> bool:
    source = model_source.pick(session.learner().id, key=f"{key}-model")
    model, tokenizer = model_source.load_model(source)
    left, right = st.columns([3, 2])
    prompt = left.text_input("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=400,
                             help=f"Any text. The model reads at most {model.config.block_size} tokens of it.")
    new_tokens = right.slider("New tokens to write", 20, 500, params.new_tokens, step=10, key=f"{key}-new-tokens",
                              help="Each timing writes this many tokens, with the cache and then without it.")
    if not prompt:
        st.info("Type a prompt for the model to continue.")
        return False
    inputs = (source.run_dir, source.final_step, prompt, new_tokens)
    if st.button("Time it", key=f"{key}-run", type="primary", icon=":material/timer:",
                 help=f"Writes {new_tokens} tokens after your prompt with the cache and without it, "
                      f"{ROUNDS} times each, and times every token."):
        try:
            with st.spinner(f"Writing {new_tokens} tokens, {2 * ROUNDS} times..."):
                cost = inference_cost(model, tokenizer, prompt, new_tokens, rounds=ROUNDS)
        except ValueError as err:
            st.warning(f"The model cannot read this prompt: {escape_md(str(err))}. A character model only knows "
                       "the characters of its training text.")
            return False
        st.session_state[_state_key(key)] = {"inputs": inputs, "cost": cost}
    kept = st.session_state.get(_state_key(key))
    if not kept or kept["inputs"] != inputs:
        st.info(f"Press **Time it**: the model writes {new_tokens} tokens after your prompt twice, once keeping "
                "its keys and values (the cache) and once reading the whole text again for every token, and each "
                "token is timed.")
        return False
    _draw(kept["cost"], key)
    return True
