"""The gradient at the output, p − y (lesson 7), on the learner's model or the reference model, at any saved step.

Two views, one engine call each (`engine.look_inside.output_gradient`): one prediction (the learner's prompt and the
character that really comes next: bars of p and p − y, and torch autograd's gradient beside the formula), then one
real training batch (p − y summed over its B × T predictions, split per character into the push it got where it did
not come next and the pull where it did, on a log scale so the rare characters' small pushes show). The batch view
ends on lesson 5's question, why rare tokens drift together: the cosine similarity of their rows' gradients through
the tied table.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import OutputGradientParams
from engine.load import checkpoint
from engine.look_inside.output_gradient import (
    BatchPush,
    OutputGradient,
    TokenPush,
    batch_push,
    output_gradient,
)
from engine.look_inside.sampling import display_text
from engine.transform.tokenization import Tokenizer
from ui import model_source, run_text, session
from ui.text import escape_md

# Both at least 3:1 against the light (#ffffff) and the dark (#171614) background (tests/ui/test_chart_accessibility.py).
P_COLOUR = "#808b96"  # grey: the probability
PUSH_COLOUR = "#e4572e"  # orange: pushed down (p − y > 0)
PULL_COLOUR = "#4c78a8"  # blue: pulled up (p − y < 0)
BATCH_SIZE = 32  # windows per batch: the lesson preset's (engine.train.config)
MAX_BARS = 100  # the batch chart shows at most this many tokens (a BPE vocabulary has thousands)
NAMES = {"␣": "space", "↵": "newline"}


@st.cache_data(show_spinner="Working out the gradient...", max_entries=64)
def _prediction(run_dir: str, step: int, prompt: str, target: int) -> OutputGradient:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    return output_gradient(model, tokenizer, prompt, target)


@st.cache_data(show_spinner="Running one training batch through the model...", max_entries=16)
def _batch(run_dir: str, step: int, text_id: str, _text: str, seed: int) -> BatchPush:
    """Cached per model, step, text and seed (`_text` is named by `text_id`: a megabyte is not hashed per call)."""
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    return batch_push(model, tokenizer, _text, batch_size=BATCH_SIZE, seed=seed)


def training_text(learner_id: int, source: model_source.ModelSource) -> tuple[str, str, str] | None:
    """(text id, text, how to name it): the text the model trained on (the reference model: Tiny Shakespeare; the
    learner's run: the corpus its tokenizer reads, as lesson 10 finds it), or None when no known text fits."""
    return run_text.trained_text(learner_id, source.run_dir, source.own)


def token_name(text: str) -> str:
    """A token as an option label: whitespace named.

    >>> token_name("␣"), token_name("e")
    ('␣ (space)', 'e')
    """
    return f"{text} ({NAMES[text]})" if text in NAMES else text


def default_target(tokenizer: Tokenizer, target: str) -> int:
    """The id of the params' target character, or 0 when this vocabulary cannot spell it as one token.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> tok = CharTokenizer.from_text("ab ")
    >>> default_target(tok, " "), default_target(tok, "b"), default_target(tok, "z")
    (0, 2, 0)
    """
    try:
        ids = tokenizer.encode(target)
    except ValueError:
        return 0
    return ids[0] if len(ids) == 1 else 0


# ---------------------------------------------------------------- one prediction


def prediction_chart(view: OutputGradient) -> go.Figure:
    """Grouped bars for the tokens with the largest |p − y|: the probability p (grey) and beside it the gradient
    p − y, orange where the score is pushed down, blue for the token that came next, whose score is pulled up."""
    labels = [f"<b>{r.text} (next)</b>" if r.y else r.text for r in view.rows]
    x = list(range(len(view.rows)))
    fig = go.Figure()
    fig.add_bar(x=x, y=[r.p for r in view.rows], name="p: the model's probability", marker_color=P_COLOUR,
                offsetgroup="p", customdata=[r.text for r in view.rows],
                hovertemplate="%{customdata}: p = %{y:.4f}<extra></extra>")
    for came_next, name, colour in ((False, "p − y = p: its score is pushed down", PUSH_COLOUR),
                                    (True, "p − y = p − 1: the next character's score is pulled up", PULL_COLOUR)):
        fig.add_bar(x=x, y=[r.grad if bool(r.y) == came_next else None for r in view.rows], name=name,
                    marker_color=colour, offsetgroup="grad", customdata=[r.text for r in view.rows],
                    text=[f"{r.grad:+.2f}" if bool(r.y) == came_next else "" for r in view.rows],
                    textposition="outside", hovertemplate="%{customdata}: p − y = %{y:+.4f}<extra></extra>")
    low = min(min(r.grad for r in view.rows), 0.0)
    high = max(max(r.p for r in view.rows), 0.05)
    fig.update_layout(
        barmode="group", height=360, margin=dict(l=10, r=10, t=10, b=40),
        xaxis=dict(title="next character (␣ = space, ↵ = newline)", tickmode="array", tickvals=x, ticktext=labels),
        yaxis=dict(title="probability / gradient", range=[low * 1.2 - 0.05, high * 1.2], zeroline=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig


def prediction_text(view: OutputGradient) -> str:
    """The chart in words, largest |p − y| first.

    >>> from engine.look_inside.output_gradient import TokenGradient
    >>> t = TokenGradient(1, "␣", 0.75, 1.0, -0.25)
    >>> v = OutputGradient("a", 0, t, t, [t, TokenGradient(2, "e", 0.25, 0.0, 0.25)], 0.29, 0.0, 0.0, 2)
    >>> prediction_text(v)
    'Chart as text, p then p − y: ␣ (came next) 0.750, -0.250; e 0.250, +0.250.'
    """
    bars = "; ".join(f"{escape_md(r.text)}{' (came next)' if r.y else ''} {r.p:.3f}, {r.grad:+.3f}" for r in view.rows)
    return f"Chart as text, p then p − y: {bars}."


def prob(p: float) -> str:
    """A probability with three decimals, or in powers of ten when that would round it to 0.

    >>> prob(0.33521), prob(0.0000213)
    ('0.335', '2.1e-05')
    """
    return f"{p:.3f}" if p >= 0.0005 else f"{p:.1e}"


def prediction_summary(view: OutputGradient) -> str:
    """What the learner is looking at, in two sentences, with this prediction's own numbers."""
    t, b = view.target, view.best
    guess = ("It is also the model's own likeliest guess." if b.id == t.id else
             f"The model's own likeliest guess was **{escape_md(b.text)}**, at p = {prob(b.p)}.")
    return (f"After “…{escape_md(view.context)}” the model gave **{escape_md(t.text)}**, the character that came next, "
            f"p = **{prob(t.p)}**, so this prediction's loss is −ln {prob(t.p)} = **{view.loss:.3f}**. {guess} "
            f"Its gradient: **p − 1 = {t.grad:+.3f}** for {escape_md(t.text)} (its score goes up), and **+p** for each "
            f"of the other {view.vocab_size - 1} (their scores go down, each by as much as the model wrongly bet on it).")


def check_line(view: OutputGradient) -> str:
    return (f"**Check:** torch's autograd, backpropagating through `F.cross_entropy` (the loss the model trains "
            f"with), gives the same {view.vocab_size} numbers as p − y: the largest difference is "
            f"{view.autograd_max_diff:.1e}. All {view.vocab_size} entries of p − y add up to {view.total:.1e}, zero up "
            f"to rounding: p sums to 1, and so does y.")


# ---------------------------------------------------------------- one batch


def shown_tokens(batch: BatchPush, limit: int = MAX_BARS) -> list[TokenPush]:
    """The tokens the batch chart draws, most often next first: all of them for a character vocabulary; for a large
    one, the most frequent targets and the never-next tokens with the largest push, `limit` in all.

    >>> b = BatchPush(1, 2, 0, 1.0, [TokenPush(i, str(i), 3 - i if i < 3 else 0, 0, 0.1 * i, 0.0) for i in range(6)],
    ...               [3, 4, 5], [], [], None, None, None)
    >>> [t.id for t in shown_tokens(b, limit=4)]
    [0, 1, 4, 5]
    """
    if len(batch.tokens) <= limit:
        return batch.tokens
    seen = [t for t in batch.tokens if t.count > 0]
    never = sorted((t for t in batch.tokens if t.count == 0), key=lambda t: (-t.push, t.id))
    n_never = min(len(never), limit // 2)
    keep = {t.id for t in seen[: limit - n_never]} | {t.id for t in never[:n_never]}
    return [t for t in batch.tokens if t.id in keep]


def batch_chart(batch: BatchPush) -> go.Figure:
    """Per token, most often next on the left: the total push (orange) and pull (blue), on a log scale so that a
    push of 0.01 shows beside a pull of 100. A dotted line marks where the never-next tokens begin."""
    tokens = shown_tokens(batch)
    x = list(range(len(tokens)))
    hover = [f"{t.text}: next {t.count:,} times, read {t.read:,} times<br>pushed down {t.push:.3f} · pulled up "
             f"{t.pull:.3f} · net Σ(p − y) {t.net:+.3f}" for t in tokens]
    fig = go.Figure()
    fig.add_bar(x=x, y=[t.push if t.push > 0 else None for t in tokens], marker_color=PUSH_COLOUR,
                name="push down: Σ p where it did not come next", customdata=hover,
                hovertemplate="%{customdata}<extra></extra>")
    fig.add_bar(x=x, y=[t.pull if t.pull > 0 else None for t in tokens], marker_color=PULL_COLOUR,
                name="pull up: Σ (1 − p) where it came next", customdata=hover,
                hovertemplate="%{customdata}<extra></extra>")
    first_never = next((i for i, t in enumerate(tokens) if t.count == 0), None)
    if first_never is not None:
        fig.add_vline(x=first_never - 0.5, line_dash="dot", line_color=P_COLOUR,
                      annotation_text="never came next →", annotation_position="top right")
    fig.update_layout(
        barmode="group", bargap=0.15, height=380, margin=dict(l=10, r=10, t=30, b=40),
        xaxis=dict(title="character, most often next on the left", tickmode="array", tickvals=x,
                   ticktext=[t.text for t in tokens], tickfont=dict(family="monospace", size=11), tickangle=0),
        yaxis=dict(title="total over the batch (log scale)", type="log", dtick=1),
        legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0),
    )
    return fig


def batch_text(batch: BatchPush) -> str:
    """The chart in words: each token's count, push and pull.

    >>> b = BatchPush(1, 2, 0, 1.0, [TokenPush(0, "e", 2, 1, 0.5, 0.75), TokenPush(1, "Z", 0, 0, 0.012, 0.0)],
    ...               [1], [1], [0], None, None, None)
    >>> batch_text(b)
    'Chart as text, next count, push, pull: e 2, 0.500, 0.750; Z 0, 0.012, 0.'
    """
    rows = "; ".join(f"{escape_md(t.text)} {t.count:,}, {t.push:.3f}, {t.pull:.3f}" if t.pull else
                     f"{escape_md(t.text)} {t.count:,}, {t.push:.3f}, 0" for t in shown_tokens(batch))
    return f"Chart as text, next count, push, pull: {rows}."


def _names(batch: BatchPush, ids: list[int], most: int = 12) -> str:
    by_id = {t.id: t for t in batch.tokens}
    names = [escape_md(by_id[i].text) for i in ids[:most]]
    return " ".join(names) + (f" and {len(ids) - most:,} more" if len(ids) > most else "")


def batch_summary(batch: BatchPush, first_step: bool) -> list[str]:
    """The batch's story in a few sentences, every number from the batch; `first_step`: the model shown is the
    untrained one (else the text invites the learner to look at it).

    >>> b = BatchPush(1, 4, 0, 1.0, [TokenPush(0, "e", 4, 4, 1.0, 1.25), TokenPush(1, "Z", 0, 0, 0.25, 0.0)],
    ...               [1], [1], [0], None, None, None)
    >>> batch_summary(b, first_step=True)[:2]  # doctest: +NORMALIZE_WHITESPACE
    ['The most frequent, **e**, came next 4 times: pulled up by 1.2 there, pushed down by 1.0 everywhere else, net
    **-0.2**. Across the 1 most frequent characters, push ÷ pull runs from 0.80 to 0.80: near 1, the model bets on a
    character about as often as it really comes next.', '**1 character never came next** in these 4 predictions
    (Z). It got no pull at all, only pushes, 0.250 in all.']
    """
    n = batch.batch_size * batch.block_size
    top = batch.tokens[0]
    ratios = [t.push / t.pull for t in batch.tokens if t.id in batch.frequent]
    lines = [f"The most frequent, **{escape_md(top.text)}**, came next {top.count:,} times: pulled up by "
             f"{top.pull:.1f} there, pushed down by {top.push:.1f} everywhere else, net **{top.net:+.1f}**. Across the "
             f"{len(ratios)} most frequent characters, push ÷ pull runs from {min(ratios):.2f} to {max(ratios):.2f}: "
             f"near 1, the model bets on a character about as often as it really comes next."]
    never = [t for t in batch.tokens if t.count == 0]
    if len(never) == 1:
        lines.append(f"**1 character never came next** in these {n:,} predictions ({escape_md(never[0].text)}). It "
                     f"got no pull at all, only pushes, {never[0].push:.3f} in all.")
    elif never:
        lo, hi = min(t.push for t in never), max(t.push for t in never)
        lines.append(f"**{len(never)} characters never came next** in these {n:,} predictions "
                     f"({_names(batch, batch.never_next)}). They got no pull at all, only pushes: between "
                     f"{lo:.3f} and {hi:.3f} each, all the same sign.")
    else:
        lines.append("Every character came next at least once in this batch: draw another to find some that did not.")
    if batch.cos_never_next is not None and batch.cos_frequent is not None:
        lines.append(f"The output layer is the embedding table (lesson 5), so these sums move its rows: a row's "
                     f"gradient adds up its character's p − y at every position times the model's final vector "
                     f"there. How alike are those gradients? Their cosine similarity (lesson 5's measure) averages "
                     f"**{batch.cos_never_next:.2f}** between the rows of the characters that never came next, "
                     f"against **{batch.cos_frequent:.2f}** between the rows of the {len(batch.frequent)} most "
                     f"frequent ones.")
        if not first_step:
            lines.append("Slide the model back to **step 0** and compare: the untrained model spreads its bets "
                         "evenly, so every character that never comes next gets almost the same push.")
    if batch.autograd_max_diff is not None:
        lines.append(f"**Check:** for the characters this batch neither read nor saw come next "
                     f"({_names(batch, batch.untouched)}), that push is their row's whole gradient: autograd on the "
                     f"model's own batch loss gives the same numbers, largest difference "
                     f"{batch.autograd_max_diff:.1e}.")
    return lines


ENGINE_CODE = ("engine.look_inside.output_gradient:p_minus_y", "engine.look_inside.output_gradient:batch_push")


def render(params: OutputGradientParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    which = "own" if source.own else "ref"  # the two models' steps and vocabularies differ: a control for each
    steps = [e["step"] for e in checkpoint.list_timeline(source.run_dir)] or [source.final_step]
    step = steps[-1]
    if len(steps) > 1:
        step = st.select_slider("Model as it was at training step", options=steps, value=steps[-1],
                                key=f"{key}-step-{which}", help="Step 0 is the untrained model, before any update.")
    model, tokenizer = model_source.load_model(source, step)

    st.markdown("**One prediction**")
    left, right = st.columns([3, 1])
    prompt = left.text_input("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=400,
                             help="The model predicts the character after the last one you type.")
    ids = list(range(tokenizer.vocab_size))
    target = right.selectbox("Character that comes next", ids, index=default_target(tokenizer, params.target),
                             format_func=lambda i: token_name(display_text(tokenizer, i)), key=f"{key}-target-{which}",
                             help="The one that really follows your prompt in the text; try others too.")
    if not prompt:
        st.info("Type a prompt to see the gradient of its next prediction.")
        return
    T = model.config.block_size
    try:
        view = _prediction(source.run_dir, step, prompt, target)
    except ValueError as err:  # a character this model's vocabulary does not have
        st.warning(f"This model cannot read that prompt: {escape_md(str(err))}.")
        return
    if view.dropped:
        st.caption(f"The model reads at most {T} tokens at once, so the first {view.dropped:,} of your prompt "
                   f"were cut.")
    st.markdown(prediction_summary(view))
    st.plotly_chart(prediction_chart(view), key=f"{key}-prediction", config={"displayModeBar": False})
    st.caption(prediction_text(view))
    st.markdown(check_line(view))

    st.markdown(f"**One training batch: {BATCH_SIZE} windows × {T} characters = {BATCH_SIZE * T:,} predictions**")
    text = training_text(me.id, source)
    if text is None:
        st.info("This run trained on a text this page cannot find, so it cannot draw a batch of it.")
        return
    text_id, body, name = text
    seed_key = f"{key}-seed"
    seed = int(st.session_state.get(seed_key, 0))
    batch = _batch(source.run_dir, step, text_id, body, seed)
    st.markdown(f"A training step never learns from one prediction alone. This batch was drawn from the training "
                f"part of {escape_md(name)} the way the trainer draws one (its loss: {batch.loss:.3f}). The chart adds up "
                f"p − y over all {batch.batch_size * batch.block_size:,} predictions, character by character, "
                f"split into the push each one got and the pull.")
    st.button("Draw another batch", key=f"{key}-another", icon=":material/shuffle:", on_click=_next_seed,
              args=(seed_key, seed), help="Another batch of the same size from the same text.")
    st.plotly_chart(batch_chart(batch), key=f"{key}-batch", config={"displayModeBar": False})
    with st.expander("The chart as text"):
        st.caption(batch_text(batch))
    for line in batch_summary(batch, first_step=step == steps[0]):
        st.markdown(line)


def _next_seed(seed_key: str, seed: int) -> None:
    st.session_state[seed_key] = seed + 1
