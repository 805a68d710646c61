"""Train your own BPE tokenizer on your corpus, then watch BPE learn its first merges one step at a time.

Training is `ui.learner_tokenizer.train_and_save` (Hugging Face `tokenizers`, cached by content hash and size);
the step-through is `engine.transform.bpe_trace.trace_merges`, a slow readable re-run of the same algorithm on an excerpt
(minbpe style), so each merge can be shown with the pair, its count and what it did to the excerpt's length.
The card's `after` text waits until the learner has trained a tokenizer.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import BPETrainerParams
from engine.transform.bpe_trace import GPT2_SPLIT, MAX_TRACE_CHARS, MergeStep, trace_merges
from engine.transform.byte_level import readable
from engine.transform.tokenization import BPETokenizer
from ui import learner_corpus, learner_tokenizer, session
from ui.text import escape_md
from ui.token_chips import chip, chips_markdown

SAMPLE_CHARS = 160  # the line of the excerpt shown being merged step by step


def size_options(params: BPETrainerParams) -> list[int]:
    """Powers of two between the card's limits, plus the limits and the default.

    >>> size_options(BPETrainerParams())
    [260, 512, 1024, 2048, 4096, 8192]
    """
    sizes = {params.min_vocab_size, params.max_vocab_size, params.vocab_size}
    sizes |= {2**k for k in range(8, 16) if params.min_vocab_size <= 2**k <= params.max_vocab_size}
    return sorted(sizes)


@st.cache_data(show_spinner="Replaying BPE training step by step...", max_entries=16)
def _trace(text_hash: str, num_merges: int, _excerpt: str) -> list[MergeStep]:
    return trace_merges(_excerpt, num_merges)


def sample_line(excerpt: str, limit: int = SAMPLE_CHARS) -> str:
    """A line of the excerpt to watch: the first with plenty of letters (else any with a few), cut at a space
    near `limit`.

    >>> sample_line("# ==\\n\\nTo be, or not to be, that is the question", limit=20)
    'To be, or not to be,'
    """
    lines = [ln.strip() for ln in excerpt.splitlines()]
    letters = [sum(ch.isalpha() for ch in ln) for ln in lines]
    line = next((ln for ln, n in zip(lines, letters, strict=True) if n >= 60), None)
    line = line or next((ln for ln, n in zip(lines, letters, strict=True) if n >= 12), None)
    line = line or next((ln for ln in lines if ln), "")
    if len(line) > limit:
        cut = line.rfind(" ", 0, limit + 1)
        line = line[: cut if cut > limit // 2 else limit]
    return line


def apply_merges(text: str, steps: list[MergeStep]) -> list[bytes]:
    """`text` as tokens after the merges in `steps`, applied in order within each pre-token chunk (as BPE does).

    >>> steps = trace_merges("aaabdaaabac", 3)
    >>> apply_merges("aaab", steps[:1]), apply_merges("aaab", steps[:2]), apply_merges("aaab", steps)
    ([b'aa', b'a', b'b'], [b'aa', b'ab'], [b'aaab'])
    """
    vocab = {i: bytes([i]) for i in range(256)}
    for s in steps:
        vocab[s.new_id] = vocab[s.pair_ids[0]] + vocab[s.pair_ids[1]]
    out: list[bytes] = []
    for chunk in GPT2_SPLIT.findall(text):
        ids = list(chunk.encode("utf-8"))
        for s in steps:
            merged, k = [], 0
            while k < len(ids):
                if k + 1 < len(ids) and (ids[k], ids[k + 1]) == s.pair_ids:
                    merged.append(s.new_id)
                    k += 2
                else:
                    merged.append(ids[k])
                    k += 1
            ids = merged
        out += [vocab[i] for i in ids]
    return out


def interesting_tokens(tok: BPETokenizer, n: int = 16) -> tuple[list[str], list[str]]:
    """(the longest learned tokens, the last ones learned), as readable text; byte fragments left out."""
    learned = [tok.id_to_token(i) for i in range(256, tok.vocab_size)]
    whole = [t for t in learned if "<0x" not in t and t.strip()]
    longest = sorted(whole, key=lambda t: (-len(t), t))[:n]
    return longest, whole[-n:]


def merges_chart(steps: list[MergeStep], start_tokens: int, current: int) -> go.Figure:
    ranks = [0] + [s.rank for s in steps]
    lengths = [start_tokens] + [s.tokens_after for s in steps]
    fig = go.Figure(go.Scatter(x=ranks, y=lengths, mode="lines+markers", name="excerpt length",
                               marker=dict(size=5), hovertemplate="after merge %{x}: %{y:,} tokens<extra></extra>"))
    fig.add_trace(go.Scatter(x=[current], y=[lengths[current]], mode="markers", name="this step",
                             marker=dict(size=13, symbol="circle-open", line=dict(width=3)), hoverinfo="skip"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=40), showlegend=False,
                      xaxis_title="merge number (0 = raw UTF-8 bytes)", yaxis_title="excerpt length in tokens")
    return fig


def merges_text(steps: list[MergeStep], start_tokens: int, current: int) -> str:
    """The merges chart in words: where the curve starts and ends, and where this step sits on it.

    >>> s = [MergeStep(1, ("t", "h"), "th", 5, (1, 2), 256, 95), MergeStep(2, ("th", "e"), "the", 4, (256, 3), 257, 91)]
    >>> merges_text(s, 100, 1)
    'Chart as text: 100 tokens before any merge, 91 after all 2 merges; after merge 1 (this step), 95.'
    """
    lengths = [start_tokens] + [s.tokens_after for s in steps]
    return (f"Chart as text: {start_tokens:,} tokens before any merge, {lengths[-1]:,} after all {len(steps):,} "
            f"merges; after merge {current:,} (this step), {lengths[current]:,}.")


def _train(learner_id: int, vocab_size: int) -> None:
    learner_tokenizer.train_and_save(learner_id, vocab_size)


def _show_result(info: dict, tok: BPETokenizer | None, current_corpus: str) -> None:
    a, b, c = st.columns(3)
    a.metric("Vocabulary", f"{info['vocab_size']:,} tokens",
             help="256 byte tokens plus one new token per merge.")
    b.metric("Characters per token", f"{info['chars_per_token']:.2f}",
             help="On your whole corpus: how many characters one token covers on average.")
    c.metric("Training took", f"{info['seconds']:.1f} s" if info.get("seconds") is not None else "–")
    corpus = escape_md(str(info.get("corpus_title", info.get("corpus_id", "your corpus"))))
    st.caption(f"Trained on {corpus}: its {info.get('train_chars', 0):,} characters became "
               f"{info.get('train_tokens', 0):,} tokens. Saved: your model can use it later in the course.")
    if info["vocab_size"] < info.get("requested", info["vocab_size"]):
        st.info(f"You asked for {info['requested']:,} tokens, but the corpus ran out of pairs to merge at "
                f"{info['vocab_size']:,}: it is too short or too repetitive for a bigger vocabulary.")
    if info.get("corpus_id") != current_corpus:
        st.warning("Your corpus has changed since you trained this tokenizer. Train again to match it.",
                   icon=":material/sync_problem:")
    if tok is not None:
        longest, last = interesting_tokens(tok)
        if longest:
            st.markdown("**Its longest tokens**: whole words and phrases your corpus repeats a lot")
            st.markdown(chips_markdown(longest))
        if last:
            st.markdown("**The last tokens it learned**: the rarest pairs that still made the cut")
            st.markdown(chips_markdown(last))


def _step(key: str, delta: int, top: int) -> None:
    slider = f"{key}-step"
    st.session_state[slider] = min(max(st.session_state.get(slider, 1) + delta, 1), top)


def _step_through(params: BPETrainerParams, corpus: learner_tokenizer.CorpusText, key: str) -> None:
    st.markdown("**Watch BPE learn, one merge at a time**")
    excerpt = corpus.text[:MAX_TRACE_CHARS]
    steps = _trace(corpus.hash, params.merges_to_trace, excerpt)
    if not steps:
        st.info("Your corpus is too short to merge anything.")
        return
    n_bytes = len(excerpt.encode("utf-8"))
    st.caption(f"The same algorithm, replayed slowly on the first {len(excerpt):,} characters of your corpus: "
               f"{n_bytes:,} bytes, so {n_bytes:,} tokens before any merge. Each step finds the most frequent pair "
               "of neighbouring tokens and makes it a new token.")
    top = len(steps)
    prev, mid, nxt = st.columns([1.5, 5, 1.5], vertical_alignment="bottom")
    if st.session_state.get(f"{key}-step", 1) > top:  # the corpus changed and now yields fewer merges
        st.session_state[f"{key}-step"] = top
    k = mid.slider("Merge", 1, top, key=f"{key}-step") if top > 1 else 1
    prev.button("Previous", key=f"{key}-prev", icon=":material/chevron_left:", on_click=_step,
                args=(key, -1, top), disabled=k <= 1, width="stretch")
    nxt.button("Next", key=f"{key}-next", icon=":material/chevron_right:", icon_position="right", on_click=_step,
               args=(key, 1, top), disabled=k >= top, width="stretch")
    step = steps[k - 1]
    before = n_bytes if k == 1 else steps[k - 2].tokens_after

    st.markdown(f"Merge **{k}** of {top}: {chip(step.pair[0], 'blue')} + {chip(step.pair[1], 'orange')} → "
                f"{chip(step.new_token, 'green')} (new token id {step.new_id})")
    a, b = st.columns(2)
    a.metric("Times the pair occurred", f"{step.count:,}")
    b.metric("Excerpt length in tokens", f"{step.tokens_after:,}", delta=f"{step.tokens_after - before:,}",
             delta_color="inverse")
    st.plotly_chart(merges_chart(steps, n_bytes, k), key=f"{key}-chart",
                    config={"displayModeBar": False})
    st.caption(merges_text(steps, n_bytes, k))
    sample = sample_line(excerpt)
    if sample:
        pieces = [readable(b) for b in apply_merges(sample, steps[:k])]
        st.markdown(f"**A line of the excerpt after {k} merge{'s' if k > 1 else ''}**: {len(pieces):,} tokens "
                    f"for {len(sample):,} characters")
        st.markdown(chips_markdown(pieces))


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.bpe_trace:trace_merges",)


def render(params: BPETrainerParams, key: str) -> bool:
    """Returns True once the learner has trained a tokenizer (the card's `after` text discusses it)."""
    me = session.learner()
    corpus = learner_tokenizer.corpus_text(me.id)
    current = learner_corpus.chosen(me.id)
    options = size_options(params)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    size = left.select_slider("Vocabulary size", options, value=params.vocab_size, key=f"{key}-size",
                              format_func=lambda v: f"{v:,}",
                              help="How many tokens your tokenizer will know: 256 bytes plus one per merge.")
    if right.button("Train my tokenizer", key=f"{key}-train", type="primary", icon=":material/model_training:",
                    width="stretch"):
        _train(me.id, size)
    info = learner_tokenizer.bpe_info(me.id)
    if info is None:
        st.caption(f"Nothing trained yet. Your corpus: {escape_md(current.title)}, {len(corpus.text):,} characters.")
    else:
        _show_result(info, learner_tokenizer.learner_bpe(me.id), current.id)
    st.divider()
    _step_through(params, corpus, key)
    return info is not None
