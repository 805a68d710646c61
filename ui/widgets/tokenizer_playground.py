"""Type anything and see it as tokens: a character tokenizer and a BPE side by side, as coloured chips.

The chips are drawn by `ui/token_chips.py` (escaped Markdown, never raw HTML), shared with the BPE trainer.

The BPE is the learner's own (`ui/learner_tokenizer.py`) once they have trained one, else one trained on their
corpus at `params.vocab_size`. Both are cached, so a rerun only encodes (well under a millisecond for a paragraph).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from course.widgets import TokenizerPlaygroundParams
from engine.transform.tokenization import Token, Tokenizer
from ui import learner_corpus, learner_tokenizer, session
from ui.text import escape_md
from ui.token_chips import chips_markdown, visible

MAX_CHARS = 3000


def token_rows(tokens: Sequence[Token]) -> list[dict[str, object]]:
    """The table under the chips: one row per token id, with the span of the text it covers."""
    return [{"id": t.id, "token": visible(t.raw or t.text), "start": t.start, "end": t.end} for t in tokens]


def _panel(title: str, note: str, tok: Tokenizer, text: str, key: str) -> None:
    st.markdown(f"**{title}**")
    st.caption(note)
    tokens = tok.encode_with_offsets(text)
    n = len(tokens)
    st.markdown(f"**{n:,}** tokens · **{len(text) / max(n, 1):.2f}** characters per token")
    with st.container(key=f"{key}-chips"):
        st.markdown(chips_markdown([c.text for c in tok.token_chips(text)]))
    if any(t.partial for t in tokens):
        st.caption("Some characters took several byte tokens (shown as <0x..> in the table); "
                   "their chip shows the character those bytes spell together.")
    st.dataframe(token_rows(tokens), hide_index=True, height=min(36 + 35 * n, 248), key=f"{key}-table",
                 column_config={"start": st.column_config.NumberColumn(help="offset of the first character"),
                                "end": st.column_config.NumberColumn(help="offset one past the last character")})


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.tokenization:train_bpe", "engine.transform.tokenization:CharTokenizer.encode")


def render(params: TokenizerPlaygroundParams, key: str) -> None:
    me = session.learner()
    text = st.text_area("Type or paste anything", value=params.text, key=f"{key}-text", height=100,
                        max_chars=MAX_CHARS,
                        help="Try an emoji, an accented word, a long number, a line of code, another language.")
    if not text:
        st.info("Type something above to see its tokens.")
        return
    corpus = learner_tokenizer.corpus_text(me.id)
    title = learner_corpus.chosen(me.id).title

    char_tok = learner_tokenizer.char_tokenizer(corpus, text)
    unseen = sorted(set(text) - learner_tokenizer.corpus_chars(corpus))
    char_note = f"One token per character. Vocabulary: the {char_tok.vocab_size - len(unseen):,} characters of your corpus"
    if unseen:
        shown = ", ".join(escape_md(visible(c)) for c in unseen[:8])
        shown += f" and {len(unseen) - 8} more" if len(unseen) > 8 else ""
        char_note += (f", plus {len(unseen)} it never contains, added here so nothing fails: {shown}. "
                      "A real character tokenizer would have no id for them.")
    else:
        char_note += "."

    own = learner_tokenizer.learner_bpe(me.id)
    if own is not None:
        info = learner_tokenizer.bpe_info(me.id) or {}
        bpe, bpe_title = own, f"Your own BPE · {own.vocab_size:,} tokens"
        bpe_note = f"The tokenizer you trained on {escape_md(str(info.get('corpus_title', 'your corpus')))}."
    else:
        bpe = learner_tokenizer.trained(corpus, params.vocab_size).tokenizer
        bpe_title = f"BPE · {bpe.vocab_size:,} tokens"
        bpe_note = (f"Trained on your corpus, {escape_md(title)}. Once you train your own BPE in this lesson, "
                    "it takes this place.")

    left, right = st.columns(2, gap="medium")
    with left:
        _panel("Character tokenizer", char_note, char_tok, text, f"{key}-char")
    with right:
        _panel(bpe_title, bpe_note, bpe, text, f"{key}-bpe")
