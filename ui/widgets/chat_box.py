"""Lesson 11: talk to your assistant. A chat box on the learner's supervised fine-tune (the run under
`params.run_key`, which the card "Try it: teach your model to answer" trains): each question goes to the model
alone, in the template, and it answers (`engine.post_training.chat.reply`: greedy as `sft.ask`, or sampled at a
temperature with a fixed seed). Under each answer, the exact string it read and wrote, special tokens by name, and
how it stopped: with `<|end|>` by itself, by starting a new turn, or at the length limit.

No model, no box: until the learner's fine-tune has ended with weights, the page says so and points to the card that
trains it. The history is kept in the session per widget key and run, so a new fine-tune starts a new conversation.
The loaded model is shared between sessions (`ui.assistant_runs.load_model`, cached per run folder and checkpoint
time): read-only.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from course.widgets import ChatBoxParams
from engine.load import checkpoint
from engine.post_training.chat import SEED, Reply, knows_template, longest_question, missing_chars, reply
from engine.post_training.chat_template import SPECIAL_NAMES
from engine.post_training.instructions import KINDS, Exchange, bundled
from ui import assistant_runs, run_status, run_view, session
from ui.finetune_view import char_name, ckpt_stamp
from ui.run_view import RunView
from ui.text import escape_md

TRAINING_CARD = "Try it: teach your model to answer"
_STOPS = {
    "end": "✅ It ended its answer by itself, with `<|end|>`.",
    "new_turn": "↩️ It did not write `<|end|>`: it began a new `<|user|>` turn by itself, and was cut there.",
    "limit": "⏹️ It did not write `<|end|>`: it hit the length limit of {n} tokens.",
}


def examples() -> list[Exchange]:
    """One held-out exchange of each kind: questions the model never trained on, in the instruction set's order."""
    held = bundled().validation
    return [next(e for e in held if e.kind == kind) for kind in KINDS if any(e.kind == kind for e in held)]


def unavailable(run: RunView | None) -> str | None:
    """Why there is no model to talk to yet, or None when the run has ended with weights."""
    where = f"on the card above, **{TRAINING_CARD}**"
    if run is None:
        return f"You have no fine-tuned model yet. Train one {where}; then you can talk to it here."
    if run.active:
        return (f"Your model is still being fine-tuned (step {run.step:,}). When its run has ended, you can talk "
                f"to it here.")
    if not (Path(run.run_dir) / checkpoint.CKPT).is_file():
        return (f"Your fine-tune ended without saved weights ({run_status.label(run.status)}). Start it again "
                f"{where}.")
    return None


def stop_sentence(r: Reply) -> str:
    """How the model's answer ended, in one line.

    >>> stop_sentence(Reply("q", "a", "limit", "", "", 40, 40, 0.0, None, 64, 0))
    '⏹️ It did not write `<|end|>`: it hit the length limit of 40 tokens.'
    """
    return _STOPS[r.stop].format(n=r.max_tokens)


def read_wrote_caption(r: Reply) -> str:
    """What the expander under an answer says beside the exact string.

    >>> read_wrote_caption(Reply("q", "a", "end", "", "", 2, 40, 0.8, 0, 64, 3))
    'It read everything up to `<|assistant|>` and wrote everything after. Sampled at temperature 0.8 with seed 0: the same question at this temperature gets the same answer. Its context is 64 tokens: by the last token it wrote, the first 3 had slid out of its window.'
    """
    how = ("Greedy: the likeliest token each time, so the same question always gets the same answer."
           if r.seed is None else f"Sampled at temperature {r.temperature:g} with seed {r.seed}: the same question "
                                  "at this temperature gets the same answer.")
    window = (f" Its context is {r.context} tokens: by the last token it wrote, the first {r.slid_out} had slid out "
              "of its window." if r.slid_out else "")
    return f"It read everything up to `<|assistant|>` and wrote everything after. {how}{window}"


def _history_key(key: str, run: RunView) -> str:
    return f"{key}-history-{run.run_id}"


def _ask(key: str, history_key: str, run_dir: str, stamp: float, question: str | None = None) -> None:
    """A turn, in a callback (before the script runs, so the page draws the new turn in the history): the question
    typed (or an example's), put to the model alone; a refusal for characters it has no token for."""
    question = question if question is not None else st.session_state.get(f"{key}-ask")
    if not question or not question.strip():
        return
    model, tokenizer = assistant_runs.load_model(run_dir, stamp)
    missing = missing_chars(tokenizer, question)
    if missing:
        named = ", ".join("a special token's character" if ch in SPECIAL_NAMES else char_name(ch)
                          for ch in missing[:8])
        st.session_state[f"{key}-refused"] = (f"Your model has no token for {named}: it knows only the characters "
                                              "of the text it learned from. Ask again without them.")
        return
    temperature = float(st.session_state.get(f"{key}-temperature", 0.0))
    st.session_state.setdefault(history_key, []).append(reply(model, tokenizer, question, temperature, SEED))


def _clear(history_key: str) -> None:
    st.session_state[history_key] = []


def draw_turn(r: Reply) -> None:
    """One turn: the question, the answer, how it stopped, and the exact string under it."""
    with st.chat_message("user"):
        st.markdown(escape_md(r.question))
    with st.chat_message("assistant"):
        st.markdown(escape_md(r.answer) if r.answer.strip() else "*(an empty answer)*")
        st.caption(stop_sentence(r))
        with st.expander("What it read and wrote, exactly"):
            st.code(r.read + r.wrote, language=None, wrap_lines=True)
            st.caption(read_wrote_caption(r))


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.post_training.sft:ask", "engine.post_training.chat:reply")


def render(params: ChatBoxParams, key: str) -> bool:
    """Returns True once the model has answered at least once, so the card's `after` text discusses real answers."""
    me = session.learner()
    run = run_view.load(me.id, params.run_key)
    why = unavailable(run)
    if why is not None:
        st.info(why, icon=":material/forum:")
        return False
    stamp = ckpt_stamp(run.run_dir)
    with st.spinner("Loading your fine-tuned model..."):
        model, tokenizer = assistant_runs.load_model(run.run_dir, stamp)
    step = run.checkpoint_step if run.checkpoint_step is not None else run.step
    if not knows_template(tokenizer):
        st.warning("This run was not fine-tuned in the chat template (its tokenizer has no `<|user|>`), so it cannot "
                   f"be talked to here. Train your assistant on the card above, **{TRAINING_CARD}**.")
        return False
    block = model.config.block_size
    st.caption(f"Talking to **your fine-tuned model** ({step:,} steps of fine-tuning, "
               f"{run_status.label(run.status).lower()}). Each turn it reads **only your latest question**, in the "
               f"template: its context is {block} characters, about one short exchange, so it remembers no earlier "
               "turn.")
    st.slider("Temperature (0 = greedy)", 0.0, 1.5, value=params.temperature, step=0.1, key=f"{key}-temperature",
              help="Lesson 8: 0 picks the likeliest character each time; above 0 the answer is sampled, with a "
                   f"fixed seed ({SEED}), so the same question at the same temperature gives the same answer.")
    history_key = _history_key(key, run)
    args = (key, history_key, run.run_dir, stamp)
    st.markdown("Try a question it never trained on, one of each kind:")
    shown = examples()
    for i, (col, ex) in enumerate(zip(st.columns(len(shown)), shown, strict=True)):
        col.button(escape_md(ex.question), key=f"{key}-example-{i}", on_click=_ask, args=(*args, ex.question),
                   help=escape_md(f"{KINDS[ex.kind]}. The instruction set's answer: {ex.answer}"), width="stretch")
    history: list[Reply] = st.session_state.get(history_key, [])
    for turn in history:
        draw_turn(turn)
    refused = st.session_state.pop(f"{key}-refused", None)
    if refused:
        st.warning(refused, icon=":material/block:")
    st.chat_input(f"Ask your model (at most {longest_question(block)} characters)", key=f"{key}-ask",
                  max_chars=longest_question(block), on_submit=_ask, args=args)
    if history:
        st.button("Clear the conversation", key=f"{key}-clear", on_click=_clear, args=(history_key,),
                  icon=":material/delete:")
    return bool(history)

