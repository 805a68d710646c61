"""Lesson 3: a training mixture of the corpora the learner has (the bundled ones and their own uploads).

Top: a weight per source and a token budget; `engine.extract.mixture.plan_mixture` shares the budget between the
sources and says how many times each one is read (its epochs), flagging those repeated past what helps. Bottom,
"what the mixture teaches": a trained model's loss on a held-out slice of each source, and on text it wrote itself
(`engine.look_inside.domain_loss`), measured on a press and cached by run folder, step and corpora. Sizes are
characters, which are tokens for the course's character-level models.
"""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from course.widgets import DataMixtureParams
from engine.extract import corpus as engine_corpus
from engine.extract.bundled import manifest
from engine.extract.corpus import CorpusInfo
from engine.extract.mixture import FADED_LIMIT, FRESH_LIMIT, MixturePlan, SourcePlan, plan_mixture
from engine.load.reference import REFERENCE_DIR, REFERENCE_TRAIN_ARGS
from engine.look_inside.domain_loss import DOMAIN_CHARS, DomainLoss, SelfLoss, domain_losses, self_loss
from engine.number_format import loss as fmt_loss
from engine.runs import run_source
from engine.transform.tokenization import CharTokenizer
from ui import learner_corpus, model_source, session
from ui.text import escape_md, markdown_table

BUDGETS = (100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000,
           100_000_000)
# The model writes as chat systems usually do, leaning towards its likelier characters (a temperature below 1).
# Temperature itself is lesson 8's idea, so lesson 3 neither names it nor lets the learner turn it: at 1 the model's
# own text is about as surprising to it as real text, and the point (its writing holds nothing new) needs words.
SELF_TEMPERATURE = 0.8
MAX_WEIGHT = 10
OK_COLOUR = "#4c78a8"
FLAG_COLOUR = "#e4572e"
OWN_COLOUR = "#9467bd"
LINE_COLOUR = "#888888"
VERDICT = {"unused": "left out", "fresh": "✅ fresh", "repeated": "🔁 a few repeats", "over": "⚠️ too many",
           "far_over": "⛔ far too many"}


def short_count(n: float) -> str:
    """A token count in a few characters.

    >>> short_count(100_000), short_count(2_000_000), short_count(2_500_000), short_count(470_194), short_count(950)
    ('100k', '2M', '2.5M', '470k', '950')
    """
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.0f}"


@st.cache_data(show_spinner="Counting the corpora...", max_entries=8)
def _sizes(corpora: tuple[tuple[str, str], ...], folder: str) -> dict[str, int]:
    """Characters per corpus, keyed by (id, version) so a changed upload is counted again."""
    return {cid: len(engine_corpus.load_corpus(cid, Path(folder))) for cid, _ in corpora}


@st.cache_data(show_spinner="Scoring the model on each text...", max_entries=16)
def _domain_losses(run_dir: str, step: int, corpora: tuple[tuple[str, str], ...], folder: str) -> list[DomainLoss]:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    texts = {cid: engine_corpus.load_corpus(cid, Path(folder)) for cid, _ in corpora}
    return domain_losses(model, tokenizer, texts)


@st.cache_data(show_spinner="The model is writing...", max_entries=32)
def _self_loss(run_dir: str, step: int, temperature: float) -> SelfLoss:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    return self_loss(model, tokenizer, temperature=temperature)


def trained_on(run_dir: str, corpora: list[CorpusInfo]) -> str | None:
    """The id of the corpus a run trained on, where the course knows it: the reference model's from the command
    that built it, a learner's run from its recorded source; None when unknown or not among `corpora`."""
    if Path(run_dir) == Path(REFERENCE_DIR):
        name = Path(REFERENCE_TRAIN_ARGS[REFERENCE_TRAIN_ARGS.index("--corpus") + 1]).name
        cid = next((e.id for e in manifest() if e.path is not None and e.path.name == name), None)
    else:
        recorded = run_source.read(run_dir)
        cid = recorded.corpus_id if recorded else None
    return cid if cid in {c.id for c in corpora} else None


# ---- the mixture ------------------------------------------------------------------------------------------------


def plan_rows(plan: MixturePlan, titles: dict[str, str]) -> list[dict[str, str]]:
    """The plan as Markdown table rows: one per source.

    >>> p = plan_mixture({"a": 9_000, "b": 1_000}, {"a": 1, "b": 1}, 10_000)
    >>> plan_rows(p, {"a": "Web", "b": "Books"})[1]
    {'source': 'Books', 'size': '1,000', 'natural share': '10%', 'mixed share': '50% (up ×5.0)', 'tokens drawn': '5,000', 'epochs': '5.00', 'verdict': '⚠️ too many'}
    """
    return [{"source": escape_md(titles[s.name]), "size": f"{s.size:,}", "natural share": f"{s.natural_share:.0%}" if s.weight else "–",
             "mixed share": f"{s.share:.0%} ({sampling(s)})" if s.weight else "–", "tokens drawn": f"{s.tokens:,}",
             "epochs": f"{s.epochs:.2f}", "verdict": VERDICT[s.level]} for s in plan.sources]


def sampling(s: SourcePlan) -> str:
    """Up- or downsampled, and by how much: the share of the budget over the natural share.

    >>> p = plan_mixture({"a": 9_000, "b": 1_000, "c": 10_000}, {"a": 1, "b": 1, "c": 0}, 10_000)
    >>> [sampling(s) for s in p.sources]
    ['down ×0.56', 'up ×5.0', 'left out']
    >>> round(p.sources[0].natural_share, 2)  # of the text in the mixture: c is left out
    0.9
    """
    if s.weight == 0:
        return "left out"
    if 0.95 <= s.boost <= 1.05:
        return "as is ×1.0"
    return f"up ×{s.boost:.1f}" if s.boost > 1 else f"down ×{s.boost:.2f}"


def epochs_chart(plan: MixturePlan, titles: dict[str, str]) -> go.Figure:
    """How many times each source is read, on a log scale, with read-once and the two thresholds of repetition
    marked (labelled in the caption under the chart)."""
    shown = [s for s in plan.sources if s.epochs > 0]
    fig = go.Figure(go.Bar(
        y=[titles[s.name] for s in shown], x=[s.epochs for s in shown], orientation="h",
        marker_color=[FLAG_COLOUR if s.flagged else OK_COLOUR for s in shown],
        text=[f"{s.epochs:.2f}×" for s in shown], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: read %{x:.2f} times<extra></extra>",
    ))
    low = min([s.epochs for s in shown] + [0.5]) / 2
    high = max([s.epochs for s in shown] + [FADED_LIMIT]) * 3
    for x in (1, FRESH_LIMIT, FADED_LIMIT):
        fig.add_vline(x=x, line_dash="dot", line_color=LINE_COLOUR)
        # on a log axis an annotation's x is in powers of ten
        fig.add_annotation(x=math.log10(x), y=1, yref="paper", yanchor="bottom", showarrow=False,
                           text="once" if x == 1 else f"{x:g}×", font=dict(size=11))
    ticks = [t for t in (0.01, 0.03, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
             if low <= t <= high]
    fig.update_layout(
        height=110 + 42 * len(shown), margin=dict(l=10, r=40, t=30, b=10), showlegend=False,
        xaxis=dict(title="times the source is read (epochs, log scale)", type="log",
                   range=[math.log10(low), math.log10(high)], tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]),
        yaxis=dict(title="source", autorange="reversed"),
    )
    return fig


def epochs_text(plan: MixturePlan, titles: dict[str, str]) -> str:
    """The chart in words.

    >>> p = plan_mixture({"a": 9_000, "b": 1_000}, {"a": 1, "b": 1}, 10_000)
    >>> epochs_text(p, {"a": "Web", "b": "Books"})
    'Chart as text, times each source is read: Web 0.56, Books 5.00 (too many repeats).'
    """
    parts = [f"{escape_md(titles[s.name])} {s.epochs:.2f}" + (" (too many repeats)" if s.flagged else "")
             for s in plan.sources if s.epochs > 0]
    return "Chart as text, times each source is read: " + ", ".join(parts) + "."


def summary(plan: MixturePlan) -> str:
    """How much of the budget is text read for the first time.

    >>> summary(plan_mixture({"a": 9_000, "b": 1_000}, {"a": 1, "b": 1}, 10_000))
    'Of the **10,000** tokens the model reads, **6,000** (60%) are text it has not read before and **4,000** (40%) are repeats.'
    """
    fresh = plan.unique_tokens / plan.budget
    return (f"Of the **{plan.budget:,}** tokens the model reads, **{plan.unique_tokens:,}** ({fresh:.0%}) are text it "
            f"has not read before and **{plan.repeated_tokens:,}** ({1 - fresh:.0%}) are repeats.")


# ---- what the mixture teaches -----------------------------------------------------------------------------------


def loss_chart(losses: list[DomainLoss], own: SelfLoss, titles: dict[str, str], vocab_size: int,
               unit: str = "character") -> go.Figure:
    """The model's loss on each corpus's held-out text, and on its own writing, with random guessing (ln V) marked."""
    scored = [d for d in losses if d.tokens > 0]
    labels = [titles[d.name] for d in scored] + ["its own writing"]
    values = [d.loss for d in scored] + [own.loss]
    fig = go.Figure(go.Bar(
        y=labels, x=values, orientation="h", marker_color=[OK_COLOUR] * len(scored) + [OWN_COLOUR],
        text=[fmt_loss(v) for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: loss %{x:.3f}<extra></extra>",
    ))
    guess = math.log(vocab_size)
    fig.add_vline(x=guess, line_dash="dot", line_color=LINE_COLOUR, annotation_position="top",
                  annotation_text=f"guessing at random: ln {vocab_size} = {guess:.2f}", annotation_font_size=11)
    fig.update_layout(
        height=130 + 42 * len(labels), margin=dict(l=10, r=40, t=40, b=10), showlegend=False,
        xaxis=dict(title=f"loss: −ln p of the next {unit}, averaged (lower is better)",
                   range=[0, max(values + [guess]) * 1.15]),
        yaxis=dict(title="text scored", autorange="reversed"),
    )
    return fig


def loss_text(losses: list[DomainLoss], own: SelfLoss, titles: dict[str, str]) -> str:
    """The loss chart in words.

    >>> d = [DomainLoss("a", 1.5, 100, 100, 0, ""), DomainLoss("b", 3.8, 90, 100, 10, "_")]
    >>> loss_text(d, SelfLoss("x", 0.8, 0, 1.25, 64), {"a": "Shakespeare", "b": "Code"})
    'Chart as text, loss on each text: Shakespeare 1.500, Code 3.800, its own writing 1.250.'
    """
    parts = [f"{escape_md(titles[d.name])} {fmt_loss(d.loss)}" for d in losses if d.tokens > 0]
    return "Chart as text, loss on each text: " + ", ".join(parts + [f"its own writing {fmt_loss(own.loss)}"]) + "."


def unknown_note(d: DomainLoss, title: str) -> str | None:
    """What was left out of a slice because the model has no token for it (invisible characters named as such).

    >>> unknown_note(DomainLoss("b", 3.8, 90, 8000, 1106, "=(\\r_"), "Code")
    '**Code**: 1,106 of 8,000 characters (14%) are ones this model has no token for, such as \\\\= \\\\( \\\\_ and invisible control characters. It could never write them, so they were left out before scoring: on the full text it would do even worse.'
    """
    if not d.unknown:
        return None
    visible = [ch for ch in d.unknown_chars if ch.isprintable() and not ch.isspace()]
    examples = " ".join(escape_md(ch) for ch in visible[:8])
    if len(visible) < len(d.unknown_chars):
        examples = f"{examples} and invisible control characters" if examples else "invisible control characters"
    return (f"**{escape_md(title)}**: {d.unknown:,} of {d.chars:,} characters ({d.unknown_share:.0%}) are ones this "
            f"model has no token for, such as {examples}. It could never write them, so they were left out before "
            "scoring: on the full text it would do even worse.")


def _teaches(source: model_source.ModelSource, corpora: list[CorpusInfo], titles: dict[str, str], key: str) -> bool:
    home = trained_on(source.run_dir, corpora)
    mixture = (f"Its training mixture was **100% {escape_md(titles[home])}**." if home else
               "Its training mixture was the text it was trained on in lesson 7.")
    st.markdown(f"A model can only be good at what its mixture held. {mixture} Before you measure, guess: on which "
                "of these texts will its loss be highest, and how will it score on text it wrote itself?")
    measured = f"{key}-measured"  # a plain key, not a widget's: the results stay shown while sliders move
    if st.button("Measure the model on each text", key=f"{key}-measure", icon=":material/straighten:"):
        st.session_state[measured] = True
    if not st.session_state.get(measured):
        return False
    step = source.final_step
    corpora_key = tuple((c.id, learner_corpus.version(c)) for c in corpora)
    folder = str(learner_corpus.upload_folder(session.learner().id))
    losses = _domain_losses(source.run_dir, step, corpora_key, folder)
    own = _self_loss(source.run_dir, step, SELF_TEMPERATURE)
    _, tokenizer = model_source.load_model(source, step)
    unit = "character" if isinstance(tokenizer, CharTokenizer) else "token"
    st.caption(f"Each text is scored on {DOMAIN_CHARS:,} characters from the start of its last tenth, the part a "
               "training run holds back to test on, so even its own corpus is text this model never read.")
    st.plotly_chart(loss_chart(losses, own, titles, tokenizer.vocab_size, unit), key=f"{key}-losses",
                    config={"displayModeBar": False})
    st.caption(loss_text(losses, own, titles))
    scored = [d for d in losses if d.tokens > 0]
    best, worst = min(scored, key=lambda d: d.loss), max(scored, key=lambda d: d.loss)
    st.markdown(f"It does best on **{escape_md(titles[best.name])}** (loss **{fmt_loss(best.loss)}**) and worst on "
                f"**{escape_md(titles[worst.name])}** (**{fmt_loss(worst.loss)}**), where guessing at random "
                f"scores {math.log(tokenizer.vocab_size):.2f}. Every {math.log(2):.2f} more loss means the model gave the "
                f"right next {unit} half the probability.")
    for d in losses:
        if d.tokens == 0:
            st.caption(f"**{escape_md(titles[d.name])}**: not one character of it is one this model can read.")
        elif note := unknown_note(d, titles[d.name]):
            st.caption(note)
    real = next((d for d in scored if d.name == home), best)
    _synthetic(real, own, titles, unit)
    return True


def _synthetic(real: DomainLoss, own: SelfLoss, titles: dict[str, str], unit: str) -> None:
    st.markdown("**Synthetic data: the model's own writing**")
    left, right = st.columns(2)
    left.metric(f"Loss on real held-out text ({escape_md(titles[real.name])})", fmt_loss(real.loss))
    right.metric("Loss on its own writing", fmt_loss(own.loss),
                 delta=f"{own.loss - real.loss:+.3f}", delta_color="off")
    gap = real.loss - own.loss
    if gap > 0.05:
        st.markdown(f"Its own text costs it **{gap:.3f}** less per {unit} than real text: it finds its own writing "
                    "easy, because it wrote what it already expected. Trained on this, it would learn its own habits "
                    "back, and nothing new about the world.")
    else:
        st.markdown("Its writing is about as surprising to it as real text, yet it still holds nothing the model "
                    "did not already believe.")
    st.caption("Synthetic text is worth training on when something that knows more wrote it (a stronger model), or "
               "when it can be checked (code that passes its tests, sums with known answers).")
    with st.expander(f"Read what it wrote ({own.tokens:,} {unit}s scored)"):
        st.code(own.text, language=None, wrap_lines=True)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.extract.mixture:plan_mixture", "engine.look_inside.domain_loss:domain_losses",
               "engine.look_inside.domain_loss:self_loss")


def render(params: DataMixtureParams, key: str) -> bool:
    me = session.learner()
    corpora = learner_corpus.available(me.id)
    titles = {c.id: c.title for c in corpora}
    sizes = _sizes(tuple((c.id, learner_corpus.version(c)) for c in corpora), str(learner_corpus.upload_folder(me.id)))
    st.markdown("**Build a mixture.** Give each source a weight: only the ratios matter, so 2 against 1 means twice "
                "the share. A source given more than its natural share (its part of all the text mixed) is **upsampled**: "
                "read more often than its size alone would earn. Sizes are characters, one token each here.")
    options = sorted(set(BUDGETS) | {params.budget_tokens})
    budget = st.select_slider("Token budget: how many tokens the model reads in training", options,
                              value=params.budget_tokens, format_func=short_count, key=f"{key}-budget")
    weights = {}
    cols = st.columns(min(len(corpora), 3))
    for i, c in enumerate(corpora):
        weights[c.id] = cols[i % len(cols)].slider(
            c.title, 0, MAX_WEIGHT, 1, key=f"{key}-weight-{c.id}",
            help=f"{sizes[c.id]:,} characters. {c.description}")
    if not any(weights.values()):
        st.info("Every weight is 0: give at least one source a weight to build a mixture.")
        return False
    plan = plan_mixture({c.id: sizes[c.id] for c in corpora}, weights, budget)
    st.markdown(markdown_table(plan_rows(plan, titles)))
    st.plotly_chart(epochs_chart(plan, titles), key=f"{key}-epochs", config={"displayModeBar": False})
    st.caption(epochs_text(plan, titles) + f" Dotted lines: read once; {FRESH_LIMIT:g} times, past which repeats "
               f"start to cost; {FADED_LIMIT:g} times, past which they add almost nothing (Muennighoff et al. 2023).")
    st.markdown(summary(plan))
    for s in plan.flagged:
        st.warning(f"**{escape_md(titles[s.name])}** is {s.note}.", icon=":material/repeat:")
    st.divider()
    st.markdown("#### What the mixture teaches")
    source = model_source.pick(me.id, key=f"{key}-model")
    return _teaches(source, corpora, titles, key)
