"""One forward pass, stage by stage: the learner's prompt from token ids to next-token probabilities, with the real
tensor shape at each stage (`engine.look_inside.inspection.forward_stages`), the likeliest next tokens, and the logit lens
(`engine.look_inside.inspection.logit_lens`: what each layer would predict if it were the last) in an expander."""

from __future__ import annotations

import streamlit as st

from course.widgets import ForwardPassParams
from engine.look_inside.inspection import LogitLens, Stage, forward_stages, logit_lens
from ui import model_source, session

WHAT = {  # stage name -> what it is, in the lesson's words
    "tokens": "one id per token of your prompt",
    "token embeddings": "each id fetches its row of the token table",
    "position embeddings": "each position fetches its row of the position table",
    "embeddings": "the two added: one vector per position",
    "final norm": "the vectors rescaled before scoring",
    "logits": "a score for every vocabulary token, at every position",
    "probabilities (last position)": "the last position's scores turned into probabilities for the next token",
}


def shape_text(shape: tuple[int, ...], names: dict[int, str]) -> str:
    """A shape with the letters the lesson uses: `(32, 128)` -> `(T=32, C=128)` (one axis without Python's comma).

    >>> shape_text((32, 128), {32: "T", 128: "C", 65: "V"})
    '(T=32, C=128)'
    >>> shape_text((65,), {32: "T", 128: "C", 65: "V"})
    '(V=65)'
    """
    parts = [f"{names[n]}={n}" if n in names else str(n) for n in shape]
    return f"({', '.join(parts)})"


def table(stages: list[Stage], names: dict[int, str]) -> list[dict[str, str]]:
    return [{"step": str(i + 1), "stage": s.name, "shape": shape_text(s.shape, names),
             "what it is": WHAT.get(s.name, "attention, then the MLP, each adding to the vectors")}
            for i, s in enumerate(stages)]


@st.cache_data(show_spinner="Running the model on your prompt...", max_entries=64)
def _run(run_dir: str, step: int, prompt: str) -> tuple[list[Stage], LogitLens, list[tuple[str, float]]]:
    model, tokenizer = model_source.load_model(model_source.ModelSource(run_dir, "", False), step)
    lens = logit_lens(model, tokenizer, prompt)
    top = lens.layers[-1].top  # the last layer's row is the model's real prediction
    return forward_stages(model, tokenizer, prompt), lens, [(text, p) for _, text, p in top]


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.transform.model:GPT.forward", "engine.look_inside.inspection:forward_stages")


def render(params: ForwardPassParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    model, _ = model_source.load_model(source)
    c = model.config
    prompt = st.text_input("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=400,
                           help=f"Any text. The model reads at most {c.block_size} tokens; a longer prompt keeps its end.")
    if not prompt:
        st.info("Type a prompt to send through the model.")
        return
    stages, lens, top = _run(source.run_dir, source.final_step, prompt)
    T = stages[0].shape[0]
    names = {T: "T", c.n_embd: "C", c.vocab_size: "V"} if len({T, c.n_embd, c.vocab_size}) == 3 else {}
    if lens.dropped:
        st.caption(f"Only the last {T} tokens are used ({lens.dropped:,} cut from the start): the model reads "
                   f"{c.block_size} at most.")
    st.markdown(f"T = **{T}** tokens in your prompt, C = **{c.n_embd}** numbers per vector, "
                f"V = **{c.vocab_size}** tokens in the vocabulary.")
    st.dataframe(table(stages, names), hide_index=True, key=f"{key}-table")
    st.markdown("**Likeliest next tokens** after your prompt (`␣` is a space, `↵` a line break):")
    st.dataframe([{"next token": t, "probability": p} for t, p in top], hide_index=True, key=f"{key}-top",
                 column_config={"probability": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                              max_value=1)})
    with st.expander("Logit lens: what would each layer predict if it were the last?"):
        st.markdown("The same scoring step, applied to the vectors after each block instead of only the last one. "
                    "Watch the guess take shape layer by layer.")
        st.dataframe([{"after": row.name, **{f"#{i + 1}": f"{t} {p:.0%}" for i, (_, t, p) in enumerate(row.top)}}
                      for row in lens.layers], hide_index=True, key=f"{key}-lens")
