"""Lesson 11: the chat template. The learner types a question and an answer and sees the one string a chat model is
trained on (`engine.post_training.chat_template.render`, special tokens by name), every position of it as a token
table (`template_table`: its token, id, the token it predicts next and whether that prediction counts in the loss,
`example_ids`), and the same exchange in a real template, ChatML (`engine.post_training.chat.chatml`).

The tokens are those of the model the lesson fine-tunes: the learner's lesson-7 model once it has ended with weights,
else the course's reference model (`ui.assistant_runs.pick_source` chooses, as lesson 10's fine-tune does, the
reference model standing in for a BPE run), with the three special tokens appended (`with_special_tokens`): their ids are the vocabulary's last three, new rows
of the token table.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from course.widgets import ChatTemplateParams
from engine.load import checkpoint
from engine.load.reference import reference_run_dir
from engine.look_inside.sampling import display_text
from engine.post_training import chat_template as template
from engine.post_training.chat import chatml, missing_chars
from engine.post_training.chat_template import (
    SPECIAL_NAMES,
    TemplateToken,
    template_table,
    with_special_tokens,
)
from engine.transform.tokenization import Tokenizer, tokenizer_from_dict
from ui import assistant_runs, session
from ui.finetune_view import char_name, ckpt_stamp

SHOWN_MISSING = 8  # characters named when the tokenizer lacks some


@st.cache_data(show_spinner="Reading the model's tokenizer...", max_entries=8)
def _tokenizer_info(run_dir: str, stamp: float) -> dict[str, Any]:
    """The checkpoint's tokenizer (as a dict) and context length, read once per folder and file time."""
    ckpt = checkpoint.read_checkpoint(run_dir)
    return {"tokenizer": ckpt["tokenizer"], "block_size": int(ckpt["model_config"]["block_size"])}


def the_tokenizer(learner_id: int, source_run_key: str) -> tuple[Tokenizer, int, str]:
    """(the tokenizer of the model the lesson fine-tunes, its context length, a sentence naming that model)."""
    source, _ = assistant_runs.pick_source(learner_id, source_run_key)
    if source is not None:
        run_dir = source.run_dir
        whose = ("Tokens of " + ("**your own model** from lesson 7" if source.own else
                                 "**the course's reference model**") + ", the model this lesson fine-tunes")
    else:
        run_dir = str(reference_run_dir())
        whose = "Your lesson-7 model is still training, so these are the tokens of **the course's reference model**"
    info = _tokenizer_info(run_dir, ckpt_stamp(run_dir))
    return tokenizer_from_dict(info["tokenizer"]), info["block_size"], whose


def table_rows(tokenizer: Tokenizer, rows: list[TemplateToken]) -> list[dict[str, object]]:
    """The token table's rows as the page shows them: whitespace made visible, special tokens by name."""
    def cell(row: TemplateToken) -> str:
        return row.token if row.special else display_text(tokenizer, row.token_id)

    out = []
    for i, row in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        out.append({"position": row.position, "token": cell(row), "id": row.token_id,
                    "predicts next": cell(nxt) if nxt is not None else "(nothing: the example ends)",
                    "counted in the loss": "✓ yes" if row.trained else "no"})
    return out


def new_rows_sentence(old_vocab: int, tokenizer: Tokenizer) -> str:
    """What the special tokens add to the vocabulary, with their ids.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> print(new_rows_sentence(3, with_special_tokens(CharTokenizer.from_text("abc"))))
    The model's vocabulary had **3** tokens, ids 0 to 2. The template adds three: `<|user|>` = **3**, `<|assistant|>` = **4**, `<|end|>` = **5**. They are the vocabulary's last three ids, so the model gets **three new rows** in its token table (lesson 5). Fine-tuning starts each at the average of the old rows and learns them like any other weights.
    """
    ids = ", ".join(f"`{name}` = **{tokenizer.encode(ch)[0]}**" for ch, name in SPECIAL_NAMES.items())
    return (f"The model's vocabulary had **{old_vocab}** tokens, ids 0 to {old_vocab - 1}. The template adds three: "
            f"{ids}. They are the vocabulary's last three ids, so the model gets **three new rows** in its token "
            "table (lesson 5). Fine-tuning starts each at the average of the old rows and learns them like any "
            "other weights.")


def refusal(tokenizer: Tokenizer, question: str, answer: str) -> str | None:
    """Why this exchange cannot be written in the model's tokens, or None when it can."""
    if not question or not answer:
        return "Type a question and an answer: the template needs both."
    if any(ch in SPECIAL_NAMES for ch in question + answer):
        return ("Your text holds one of the private characters this course uses for its special tokens. Only the "
                "template may place them, so that no one can type a special token.")
    missing = missing_chars(tokenizer, question + answer)
    if missing:
        named = ", ".join(char_name(ch) for ch in missing[:SHOWN_MISSING])
        more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
        return (f"The model has no token for {named}{more}: its vocabulary is the characters of the text it "
                "learned from. Use only those characters (plain English letters and punctuation work).")
    return None


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.post_training.chat_template:render", "engine.post_training.chat_template:example_ids",
               "engine.post_training.chat:chatml")


def render(params: ChatTemplateParams, key: str) -> None:
    me = session.learner()
    base, block_size, whose = the_tokenizer(me.id, params.source_run_key)
    try:
        tokenizer = with_special_tokens(base)
    except ValueError:
        st.info(f"{whose}: it reads **{base.kind}** tokens, and the template here needs a character-level model "
                "(lesson 7's default).")
        return
    st.caption(f"{whose}, with the template's three special tokens added.")
    left, right = st.columns(2)
    question = left.text_input("The user's question", value=params.question, max_chars=200, key=f"{key}-question")
    answer = right.text_input("The answer the model should learn", value=params.answer, max_chars=200,
                              key=f"{key}-answer")
    problem = refusal(tokenizer, question, answer)
    if problem is not None:
        st.warning(problem, icon=":material/block:")
        return

    text = render_exchange(question, answer)
    st.markdown("**The one string the model is trained on** (each special token is a single token, written here by "
                "name):")
    st.code(text, language=None, wrap_lines=True)
    rows = template_table(tokenizer, question, answer)
    trained = sum(r.trained for r in rows)
    st.markdown(f"**{len(rows)}** tokens. At each position but the last the model predicts the next token; "
                f"**{trained}** of those predictions count in the loss: the answer's {trained - 1} characters "
                "and `<|end|>`.")
    if len(rows) > block_size + 1:
        st.warning(f"This exchange is {len(rows)} tokens long, but an SFT run takes at most {block_size + 1}: the "
                   f"model's context of {block_size} tokens, plus a last one that is only predicted. It would be "
                   "refused. Shorten the question or the answer.", icon=":material/straighten:")
    st.dataframe(table_rows(tokenizer, rows), hide_index=True, width="stretch", key=f"{key}-table")
    st.markdown(new_rows_sentence(base.vocab_size, tokenizer))
    st.markdown("**Why only the answer is graded.** The question is the user's to write: at chat time it is "
                "given, never predicted, so there is nothing to learn from guessing it. Grading the answer teaches "
                "the model what to write *after* `<|assistant|>`. Grading `<|end|>` teaches it when to stop: "
                "without that, it would run on past its answer, into a made-up next turn.")
    st.markdown("**The same exchange in a real template**, ChatML (used by OpenAI's chat models and by open models "
                "such as Qwen). Each `<|im_start|>` and `<|im_end|>` is one special token there, and the role's "
                "name follows on its own line:")
    st.code(chatml(question, answer), language=None, wrap_lines=True)


def render_exchange(question: str, answer: str) -> str:
    """The templated exchange with its special tokens by name, for the page.

    >>> render_exchange("Hi?", "Hello.")
    '<|user|>Hi?<|assistant|>Hello.<|end|>'
    """
    return template.shown(template.render(question, answer))
