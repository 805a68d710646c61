"""Lesson 8: evaluation beyond the loss (engine.look_inside.evaluation). Bits per byte for every model the learner
has (their finished runs and the reference model) on the same held-out Shakespeare; a four-choice benchmark cut from
that held-out text and scored by log-likelihood on the picked model; the same benchmark cut from the model's own
training text, with lesson 3's shingles finding which items the model has read; and the model's earlier checkpoints
side by side, lower loss against benchmark accuracy.

All models are scored on the course's Shakespeare (the text of lesson 7 and of the reference model): a run trained on
another text is still scored there, and the table says what it trained on. The benchmark runs when the learner
presses the button (a few hundred short forward passes), then stays cached per model, step and size.
"""

from __future__ import annotations

import math

import streamlit as st

from course.widgets import ModelEvalParams
from engine.extract.corpus import content_hash
from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside import evaluation
from engine.look_inside.evaluation import BenchmarkScore, BitsPerByte, Contamination, Question
from engine.runs import run_source
from ui import learner_corpus, model_source, run_view, session
from ui.text import escape_md, markdown_table

CORPUS = "tinyshakespeare"  # the text every model here is scored on
SEED = 0  # one benchmark for every model, so their scores compare
CHECKPOINTS = 3  # timeline steps compared in the last section


def _shakespeare() -> str:
    return learner_corpus.bundled_text(CORPUS)


def models(learner_id: int) -> list[model_source.ModelSource]:
    """The learner's finished runs that saved a timeline (lesson 7's first), then the reference model."""
    out = []
    for run in sorted(run_view.learner_runs(learner_id), key=lambda r: (r.run_key != model_source.OWN_RUN_KEY, r.run_key)):
        timeline = checkpoint.list_timeline(run.run_dir) if not run.active else []
        if timeline:
            out.append(model_source.ModelSource(
                run.run_dir, f"Your run “{run.run_key}” ({timeline[-1]['step']:,} steps)", own=True))
    return out + [s for s in model_source.sources(learner_id) if not s.own]


def training_text(run_dir: str, learner_id: int) -> tuple[str, bool]:
    """The text a model trained on (its whole text: the first 90% of it is what it learned from), and whether that
    was found. Shakespeare or a start of it (the overfitting run's slice) is recognised by its hash; a learner's
    corpus is rebuilt from the run's record; otherwise Shakespeare stands in (False)."""
    text = _shakespeare()
    if run_dir == str(REFERENCE_DIR):
        return text, True
    src = run_source.read(run_dir)
    if src is None:
        return text, False
    if src.chars <= len(text) and content_hash(text[: src.chars]) == src.sha256:
        return text[: src.chars], True
    if src.corpus_id:
        try:
            rebuilt = learner_corpus.rebuild(learner_id, src.corpus_id, src.cleaning)
        except (KeyError, TypeError, ValueError):
            return text, False
        if content_hash(rebuilt) == src.sha256:
            return rebuilt, True
    return text, False


@st.cache_data(show_spinner="Measuring bits per byte...", max_entries=64)
def _bpb(run_dir: str, step: int) -> tuple[BitsPerByte, str]:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    name = "characters" if tokenizer.kind == "char" else f"BPE, {tokenizer.vocab_size:,} tokens"
    return evaluation.bits_per_byte(model, tokenizer, evaluation.held_out(_shakespeare())), name


@st.cache_data(show_spinner="Scoring the benchmark...", max_entries=64)
def _score(run_dir: str, step: int, n: int) -> tuple[list[Question], BenchmarkScore]:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    questions = evaluation.choice_benchmark(evaluation.split(_shakespeare())[1], n, SEED)
    return questions, evaluation.score_choices(model, tokenizer, questions)


@st.cache_data(show_spinner="Looking for the benchmark in the training text...", max_entries=32)
def _leak(run_dir: str, step: int, n: int, learner_id: int) -> tuple[Contamination, list[Question], BenchmarkScore, Contamination, bool]:
    """The clean items' contamination; a benchmark cut from the model's training part, its score and contamination."""
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    text, known = training_text(run_dir, learner_id)
    train = evaluation.split(text)[0]
    clean = evaluation.choice_benchmark(evaluation.split(_shakespeare())[1], n, SEED)
    room = len(train) // (4 * (evaluation.CONTEXT_CHARS + 2 * evaluation.ENDING_CHARS))  # short texts hold fewer
    leaked = evaluation.choice_benchmark(train, max(1, min(n, room)), SEED + 1)
    return (evaluation.contamination(clean, train), leaked, evaluation.score_choices(model, tokenizer, leaked),
            evaluation.contamination(leaked, train), known)


def shown(text: str) -> str:
    """A piece of text for a table cell: escaped, line breaks drawn as ⏎.

    >>> shown("Boatswain:\\n*Here*")
    'Boatswain\\\\:⏎ \\\\*Here\\\\*'
    """
    return escape_md(text).replace("\n", "⏎ ")


def pct(x: float) -> str:
    """>>> pct(0.375), pct(float("nan"))
    ('38%', '–')
    """
    return "–" if math.isnan(x) else f"{x:.0%}"


def points(accuracy: float) -> str:
    """>>> points(0.4)
    '+15 points on chance'
    """
    return f"{(accuracy - 0.25) * 100:+.0f} points on chance"


def bpb_rows(results: list[tuple[str, BitsPerByte, str]]) -> list[dict[str, str]]:
    """One table row per model.

    >>> bpb_rows([("ref", BitsPerByte(1.5, 100, 100), "characters")])[0]["Bits per byte"]
    '2.164'
    """
    return [{"Model": escape_md(label), "Tokenizer": tok, "Loss per token (nats)": f"{b.loss:.3f}",
             "Bytes per token": f"{b.bytes_per_token:.2f}", "Bits per byte": f"{b.bits_per_byte:.3f}"}
            for label, b, tok in results]


def item_rows(q: Question, score: BenchmarkScore, i: int) -> list[dict[str, str]]:
    item = score.items[i]
    return [{"Ending": shown(e), "Σ ln p (sum)": f"{item.loglik[j]:.2f}",
             "Per character": f"{item.per_char[j]:.3f}",
             "Marks": " · ".join(w for w, on in (("✅ what really followed", j == q.answer), ("🎯 pick by sum", j == item.pick),
                                            ("📏 pick per character", j == item.pick_norm)) if on)}
            for j, e in enumerate(q.endings)]


def compare_sentence(rows: list[tuple[int, float, float]]) -> str:
    """What the checkpoints say about loss against accuracy, from (step, bits per byte, accuracy) rows in step order.

    >>> compare_sentence([(400, 2.5, 0.40), (750, 2.2, 0.40)])
    'From step 400 to step 750 the bits per byte fell from 2.500 to 2.200, and the accuracy stayed at 40%.'
    >>> compare_sentence([(400, 2.5, 0.45), (750, 2.2, 0.40)])[-38:]
    'and the accuracy fell from 45% to 40%.'
    """
    (s0, b0, a0), (s1, b1, a1) = rows[-2], rows[-1]
    loss = f"{'fell' if b1 < b0 else 'rose'} from {b0:.3f} to {b1:.3f}"
    if round(a0 * 1000) == round(a1 * 1000):
        acc = f"stayed at {pct(a1)}"
    else:
        acc = f"{'rose' if a1 > a0 else 'fell'} from {pct(a0)} to {pct(a1)}"
    return f"From step {s0:,} to step {s1:,} the bits per byte {loss}, and the accuracy {acc}."


def _steps(source: model_source.ModelSource) -> list[int]:
    """The last CHECKPOINTS saved steps of the run (late in training, where the loss still falls a little)."""
    return [e["step"] for e in checkpoint.list_timeline(source.run_dir) if e["step"] > 0][-CHECKPOINTS:]


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.look_inside.evaluation:bits_per_byte", "engine.look_inside.evaluation:score_choices",
               "engine.look_inside.evaluation:contamination")


def render(params: ModelEvalParams, key: str) -> None:
    me = session.learner()
    options = models(me.id)
    n = params.questions

    st.markdown("#### 1. Bits per byte: one yardstick for every tokenizer")
    results = []
    for s in options:
        b, tok = _bpb(s.run_dir, s.final_step)
        results.append((s.label, b, tok))
    held = results[0][1]
    st.markdown(markdown_table(bpb_rows(results)))
    best = min(results, key=lambda r: r[1].bits_per_byte)
    st.caption(f"Every model read the same held-out Shakespeare (text no model here trained on, about "
               f"{held.bytes:,} bytes). Bits per byte = loss per token × tokens ÷ ln 2 ÷ bytes. Lowest: "
               f"**{escape_md(best[0])}**, {best[1].bits_per_byte:.3f} bits for every byte of text.")
    if len(options) == 1:
        st.caption("Train in lesson 7 (characters) or lesson 4 (your BPE) and your runs join this table.")

    st.markdown("#### 2. A benchmark scored by log-likelihood")
    labels = [s.label for s in options]
    chosen = st.radio("Model to test", labels, key=f"{key}-model", horizontal=True) if len(options) > 1 else labels[0]
    source = options[labels.index(chosen)]
    ran_key = f"{key}-ran"  # a plain session key: the button was pressed once, so results stay shown
    if st.button(f"Run the benchmark ({n} questions)", key=f"{key}-run", type="primary"):
        st.session_state[ran_key] = True
    if not st.session_state.get(ran_key):
        st.info(f"Each question is a piece of held-out Shakespeare cut at a word, and four endings: the one that "
                f"really came next and three cut from elsewhere. The model answers by scoring all four. Press the "
                f"button to ask {escape_md(source.label.lower())} {n} of them.")
        return
    step = source.final_step
    questions, score = _score(source.run_dir, step, n)
    if not score.items:
        st.warning("This model's tokenizer cannot read the benchmark's text, so it has nothing to answer.")
        return
    i = st.columns(3)[0].number_input("Question to show", 1, len(questions), 1, key=f"{key}-item",
                        help="Every question of the benchmark, one at a time.") - 1
    q = questions[i]
    st.markdown(f"**Context:** {shown(q.context)} **…?**")
    st.markdown(markdown_table(item_rows(q, score, i)))
    st.caption("Σ ln p: the log-probability of the ending's tokens, one after another, given the context (closer to 0 "
               "is likelier). A longer ending has more tokens to predict, so its sum is lower; dividing by its "
               "characters (HellaSwag's acc_norm) takes its length out.")
    a, b, c = st.columns(3)
    a.metric("Accuracy, pick by sum", pct(score.accuracy), points(score.accuracy), delta_color="off")
    b.metric("Accuracy, pick per character", pct(score.accuracy_norm), points(score.accuracy_norm),
             delta_color="off")
    c.metric("Chance (a random pick)", "25%")
    st.caption(f"{len(score.items)} questions{f' ({score.skipped} left out: unreadable characters)' if score.skipped else ''}. "
               f"With this few, luck in which questions were drawn moves the accuracy by about "
               f"±{score.standard_error:.0%} (one standard error): a difference smaller than that is noise.")

    st.markdown("#### 3. Contamination: has the model read the test?")
    clean_found, leaked, leaked_score, leaked_found, known = _leak(source.run_dir, step, n, me.id)
    st.markdown(
        f"Lesson 3's shingles again: every item becomes its set of {clean_found.shingle_size}-word shingles, and an "
        f"item counts as **found** when at least {clean_found.threshold:.0%} of them occur in the model's training "
        f"text. Of the {len(questions)} held-out items, **{sum(clean_found.found)}** were found. Now a second "
        f"benchmark, built the same way but cut from the **training** text: **{sum(leaked_found.found)} of "
        f"{len(leaked)}** found.")
    if not known:
        st.caption("This run's training text could not be rebuilt, so the second benchmark is cut from Shakespeare.")
    rows = [{"Benchmark": "held out (clean)", "Items": str(len(score.items)), "Found in training text":
             str(sum(clean_found.found)), "Accuracy (sum)": pct(score.accuracy),
             "Accuracy (per character)": pct(score.accuracy_norm)},
            {"Benchmark": "from the training text (leaked)", "Items": str(len(leaked_score.items)),
             "Found in training text": str(sum(leaked_found.found)), "Accuracy (sum)": pct(leaked_score.accuracy),
             "Accuracy (per character)": pct(leaked_score.accuracy_norm)}]
    st.markdown(markdown_table(rows))
    gap = leaked_score.accuracy_norm - score.accuracy_norm
    noise = max(score.standard_error, leaked_score.standard_error)
    if abs(gap) <= noise:
        st.caption(f"Here the two scores differ by {gap * 100:+.0f} points, within the noise (±{noise:.0%}): this model has not "
                   "memorised its text, so having read an item helps it little. A model that saw its text many times "
                   "(the overfitting run earlier in this lesson, if you trained it: pick it above) is the one to try.")
    else:
        st.caption(f"The leaked benchmark scores {gap * 100:+.0f} points against the clean one, more than the noise (±{noise:.0%}). "
                   "A score on items the model has read measures memory, not the skill the benchmark was built to test.")

    st.markdown("#### 4. Is a lower loss a more useful model?")
    steps = _steps(source)
    table = []
    for s in steps:
        bs = _bpb(source.run_dir, s)[0]
        sc = _score(source.run_dir, s, n)[1]
        table.append((s, bs.bits_per_byte, sc.accuracy_norm))
    st.markdown(markdown_table([{"Checkpoint": f"step {s:,}", "Bits per byte (held out)": f"{b:.3f}",
                                 "Benchmark accuracy (per character)": pct(acc)} for s, b, acc in table]))
    if len(table) >= 2:
        st.markdown(compare_sentence(table) + f" One question is worth {1 / len(score.items):.1%} here.")
    st.markdown(
        "The loss averages over **every** character of text: most of its gains come from spelling, spaces and common "
        "words. A benchmark asks about **particular** things, here whether an ending fits its sentence. The two "
        "usually move together, but not step for step, and a model can buy a lower loss with what the test does not "
        "ask about. The extreme is memorising: a model that has read its text many times has a tiny **training** "
        "loss and is no better on anything new. So labs report both: the loss to follow training, benchmarks to "
        "judge what the model can do, checked against the training data first.")
