"""Lesson 11: learning from one preference pair. The learner edits a prompt and two answers (the first preferred),
presses a button, and DPO trains a copy of a real model on that pair for a few steps
(`engine.post_training.preference.dpo_worked_example`): the arithmetic of step 0 and of the last step, each answer
token by token, and charts of the log-probabilities, the margin and the loss over the steps. Below it, what a
reward model's two scores mean (`bradley_terry`), the same σ.

`render_for(model, tokenizer, model_name, params, key)` draws it for any model; `render` picks the learner's
lesson-7 model or the reference model. The result is kept in the session (with the inputs that made it), so a
rerun redraws it without training again, and changed inputs hide it until the button is pressed again.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from course.widgets import PreferencePairParams
from engine.post_training.preference import DpoExample, DpoStep, bradley_terry, dpo_worked_example
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer
from ui import model_source, run_text, session
from ui.text import escape_md

# At least 3:1 against the light (#ffffff) and the dark (#171614) background (tests/ui/test_chart_accessibility.py).
CHOSEN_COLOUR = "#3b82f6"
REJECTED_COLOUR = "#e4572e"
MARGIN_COLOUR = "#8e6bd6"
LOSS_COLOUR = "#808b96"
BETAS = [0.01, 0.03, 0.1, 0.3, 1.0]
RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]  # AdamW's learning rate for the DPO steps


def logprob_chart(ex: DpoExample) -> go.Figure:
    """log π of each answer over the steps (solid), and the reference's, which never moves (dotted)."""
    xs = [s.step for s in ex.steps]
    fig = go.Figure()
    for name, colour, policy, ref in (("chosen", CHOSEN_COLOUR, "policy_chosen", "ref_chosen"),
                                      ("rejected", REJECTED_COLOUR, "policy_rejected", "ref_rejected")):
        fig.add_trace(go.Scatter(x=xs, y=[getattr(s, policy) for s in ex.steps], mode="lines+markers",
                                 name=f"log π({name})", line=dict(color=colour, width=2),
                                 hovertemplate=f"step %{{x}}<br>log π({name}) %{{y:.2f}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=xs, y=[getattr(s, ref) for s in ex.steps], mode="lines",
                                 name=f"log π_ref({name}), frozen", line=dict(color=colour, width=1.5, dash="dot"),
                                 hoverinfo="skip"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=40), xaxis_title="DPO step",
                      yaxis_title="log-probability of the answer", legend=dict(orientation="h", y=1.15))
    return fig


def margin_chart(ex: DpoExample) -> go.Figure:
    """The margin (the gap between the two implicit rewards) and the loss −log σ(margin), over the steps."""
    xs = [s.step for s in ex.steps]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[s.margin for s in ex.steps], mode="lines+markers", name="margin",
                             line=dict(color=MARGIN_COLOUR, width=2),
                             hovertemplate="step %{x}<br>margin %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[s.loss for s in ex.steps], mode="lines+markers", name="loss = −log σ(margin)",
                             line=dict(color=LOSS_COLOUR, width=2),
                             hovertemplate="step %{x}<br>loss %{y:.3f}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=40), xaxis_title="DPO step",
                      yaxis_title="margin and loss", legend=dict(orientation="h", y=1.15))
    return fig


def chart_text(ex: DpoExample) -> str:
    """The charts in words (for a screen reader): every few steps' four numbers.

    >>> s0 = DpoStep(0, -3.0, -4.0, -3.0, -4.0, 0.0, 0.0, 0.0, 0.6931, 0.5)
    >>> s1 = DpoStep(1, -2.5, -5.0, -3.0, -4.0, 0.05, -0.1, 0.15, 0.62, 0.54)
    >>> chart_text(DpoExample(0.1, 1e-4, None, None, None, None, [s0, s1]))
    'Chart as text, step: log π(chosen), log π(rejected), margin, loss. 0: -3.00, -4.00, 0.000, 0.693; 1: -2.50, -5.00, 0.150, 0.620.'
    """
    every = max(1, len(ex.steps) // 10)
    shown = ex.steps[::every] if ex.steps[-1] in ex.steps[::every] else ex.steps[::every] + [ex.steps[-1]]
    parts = "; ".join(f"{s.step}: {s.policy_chosen:.2f}, {s.policy_rejected:.2f}, {s.margin:.3f}, {s.loss:.3f}"
                      for s in shown)
    return f"Chart as text, step: log π(chosen), log π(rejected), margin, loss. {parts}."


def arithmetic_rows(ex: DpoExample) -> list[dict[str, object]]:
    """DPO's arithmetic at step 0 and after the last step, one quantity a row, each with how it is made."""
    first, last = ex.steps[0], ex.steps[-1]
    after = f"after {last.step} steps"
    rows = [
        ("log π(chosen)", "sum of the chosen answer's token terms", "policy_chosen"),
        ("log π_ref(chosen)", "the same, on the frozen copy", "ref_chosen"),
        ("reward r_c", f"β × (log π − log π_ref), β = {ex.beta:g}", "reward_chosen"),
        ("log π(rejected)", "sum of the rejected answer's token terms", "policy_rejected"),
        ("log π_ref(rejected)", "the same, on the frozen copy", "ref_rejected"),
        ("reward r_r", f"β × (log π − log π_ref), β = {ex.beta:g}", "reward_rejected"),
        ("margin", "r_c − r_r", "margin"),
        ("σ(margin)", "P(chosen beats rejected), Bradley–Terry", "prob_chosen_wins"),
        ("loss", "−log σ(margin)", "loss"),
    ]
    return [{"quantity": q, "how": how, "step 0": round(getattr(first, f), 4), after: round(getattr(last, f), 4)}
            for q, how, f in rows]


def worked_sum(s: DpoStep, beta: float) -> str:
    """One step's margin and loss written out with its numbers.

    >>> print(worked_sum(DpoStep(5, -2.5, -5.0, -3.0, -4.0, 0.05, -0.1, 0.15, 0.62, 0.54), 0.1))
    After step 5: margin = 0.1 × (−2.50 − (−3.00)) − 0.1 × (−5.00 − (−4.00)) = 0.050 − (−0.100) = **0.150**; σ(0.150) = **0.54**, so the loss is −log 0.54 = **0.620**.
    """
    def n(x: float, digits: int = 2) -> str:
        return f"{x:.{digits}f}".replace("-", "−")

    return (f"After step {s.step}: margin = {beta:g} × ({n(s.policy_chosen)} − ({n(s.ref_chosen)})) − {beta:g} × "
            f"({n(s.policy_rejected)} − ({n(s.ref_rejected)})) = {n(s.reward_chosen, 3)} − "
            f"({n(s.reward_rejected, 3)}) = **{n(s.margin, 3)}**; σ({n(s.margin, 3)}) = **{s.prob_chosen_wins:.2f}**, "
            f"so the loss is −log {s.prob_chosen_wins:.2f} = **{n(s.loss, 3)}**.")


def outcome(ex: DpoExample) -> str:
    """What the steps did, in words, with the measured numbers; it says so when both answers lost probability.

    >>> s0 = DpoStep(0, -3.0, -4.0, -3.0, -4.0, 0.0, 0.0, 0.0, 0.6931, 0.5)
    >>> s1 = DpoStep(9, -3.5, -6.0, -3.0, -4.0, -0.05, -0.2, 0.15, 0.62, 0.54)
    >>> print(outcome(DpoExample(0.1, 1e-4, None, None, None, None, [s0, s1])))
    In 9 steps log π(chosen) went from −3.00 to −3.50 and log π(rejected) from −4.00 to −6.00. **Both answers became less likely**, yet the loss fell from 0.693 to 0.620: the loss only asks the chosen answer to gain on the rejected one, each measured against the reference. P(chosen beats rejected) went from 50% to 54%.
    """
    first, last = ex.steps[0], ex.steps[-1]

    def n(x: float) -> str:
        return f"{x:.2f}".replace("-", "−")

    text = (f"In {last.step} steps log π(chosen) went from {n(first.policy_chosen)} to {n(last.policy_chosen)} and "
            f"log π(rejected) from {n(first.policy_rejected)} to {n(last.policy_rejected)}. ")
    if last.policy_chosen < first.policy_chosen and last.policy_rejected < first.policy_rejected:
        text += (f"**Both answers became less likely**, yet the loss fell from {first.loss:.3f} to {last.loss:.3f}: "
                 "the loss only asks the chosen answer to gain on the rejected one, each measured against the "
                 "reference. ")
    else:
        text += f"The loss fell from {first.loss:.3f} to {last.loss:.3f}. "
    return text + f"P(chosen beats rejected) went from {first.prob_chosen_wins:.0%} to {last.prob_chosen_wins:.0%}."


def token_rows(ex: DpoExample, which: str) -> list[dict[str, object]]:
    """One answer's tokens with their log-probability at step 0 and after the last step (learner text: shown in a
    table, never as Markdown)."""
    before, after = (ex.chosen_before, ex.chosen_after) if which == "chosen" else (ex.rejected_before,
                                                                                     ex.rejected_after)
    return [{"token": b.token, "step 0": round(b.logprob, 3), "after": round(a.logprob, 3),
             "change": round(a.logprob - b.logprob, 3)} for b, a in zip(before.terms, after.terms, strict=True)]


def _reward_model(ex: DpoExample | None, key: str) -> None:
    st.markdown("**What a reward model does with the same σ.** RLHF's reward model gives each answer one score. "
                "Bradley–Terry reads two scores as the chance the first is preferred: σ(score gap). Training "
                "raises that chance on pairs people ranked, so the preferred answer learns to score higher.")
    a, b = st.columns(2)
    rc = a.number_input("Score of the chosen answer", -10.0, 10.0, 1.0, step=0.5, key=f"{key}-rc")
    rr = b.number_input("Score of the rejected answer", -10.0, 10.0, 0.0, step=0.5, key=f"{key}-rr")
    pair = bradley_terry(rc, rr)
    gap = f"{rc:g} − {rr:g}" if rr >= 0 else f"{rc:g} − ({rr:g})"
    st.markdown(f"σ({gap}) = **{pair.prob_chosen_wins:.1%}** that the chosen answer wins; the reward "
                f"model's loss on this pair is −log of it, **{pair.loss:.3f}**. Add the same number to both scores "
                "and nothing changes: only the gap counts.")
    if ex is not None:
        last = ex.steps[-1]
        again = bradley_terry(last.reward_chosen, last.reward_rejected)
        st.markdown(f"DPO's implicit rewards after step {last.step}, {last.reward_chosen:.3f} and "
                    f"{last.reward_rejected:.3f}, give σ = **{again.prob_chosen_wins:.1%}** here: the same number "
                    "as its σ(margin). DPO is this formula with rewards read off the model itself.")


def _inputs(params: PreferencePairParams, key: str) -> tuple[str, str, str, float, float]:
    prompt = st.text_area("Prompt", value=params.prompt, key=f"{key}-prompt", max_chars=200, height=68,
                          help="The text both answers follow. It is read, not scored.")
    left, right = st.columns(2)
    chosen = left.text_input("Chosen answer (preferred)", value=params.chosen, key=f"{key}-chosen", max_chars=200)
    rejected = right.text_input("Rejected answer", value=params.rejected, key=f"{key}-rejected", max_chars=200)
    left, right = st.columns(2)
    beta = left.select_slider("β", BETAS, value=min(BETAS, key=lambda b: abs(b - params.beta)), key=f"{key}-beta",
                              help="How much a gap in log-probability counts. Small β: the model must move further "
                                   "from the reference before the loss is satisfied.")
    lr = right.select_slider("Learning rate (AdamW)", RATES, value=min(RATES, key=lambda r: abs(r - params.lr)),
                             key=f"{key}-lr", format_func=lambda r: f"{r:g}",
                             help="How big each step is. Big steps move the whole model further, and can pull the chosen "
                                  "answer down along with the rejected one.")
    return prompt, chosen, rejected, beta, lr


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.post_training.preference:dpo_worked_example", "engine.post_training.preference:dpo_loss",
               "engine.post_training.preference:completion_logprobs", "engine.post_training.preference:bradley_terry")


def render_for(model: GPT, tokenizer: Tokenizer, model_name: str, params: PreferencePairParams, key: str) -> None:
    """The widget for any model: `model_name` says on screen which one (the model itself is never changed)."""
    st.caption(f"Model: **{escape_md(model_name)}**. DPO trains a copy of it; the original stays as it is.")
    prompt, chosen, rejected, beta, lr = _inputs(params, key)
    wanted = (model_name, prompt, chosen, rejected, beta, params.steps, lr)
    store = f"{key}-result"
    if st.button(f"Run {params.steps} DPO steps on this pair", key=f"{key}-run", type="primary",
                 icon=":material/play_arrow:"):
        try:
            with st.spinner("Training a copy of the model on the pair..."):
                st.session_state[store] = (wanted, dpo_worked_example(model, tokenizer, prompt, chosen, rejected,
                                                                      beta, params.steps, lr))
        except ValueError as err:
            st.session_state.pop(store, None)
            st.warning(f"The model cannot score this pair: {escape_md(str(err))}.")
    kept = st.session_state.get(store)
    ex = kept[1] if kept and kept[0] == wanted else None
    if ex is None:
        st.info("Press the button to score both answers and train a copy of the model on the pair.")
    else:
        _results(ex, key)
    _reward_model(ex, key)


def _results(ex: DpoExample, key: str) -> None:
    last = ex.steps[-1]
    cols = st.columns(3)
    cols[0].metric("Loss", f"{last.loss:.3f}", f"{last.loss - ex.steps[0].loss:+.3f} from step 0", delta_color="inverse")
    cols[1].metric("Margin", f"{last.margin:.3f}")
    cols[2].metric("P(chosen beats rejected)", f"{last.prob_chosen_wins:.0%}")
    st.markdown("**The arithmetic.** At step 0 the policy *is* the reference, so both rewards are 0, the margin is "
                f"0, σ(0) = 0.5 and the loss is −log 0.5 = log 2 = **{ex.steps[0].loss:.3f}**.")
    st.markdown(worked_sum(last, ex.beta))
    st.dataframe(arithmetic_rows(ex), hide_index=True, key=f"{key}-arithmetic")
    st.markdown(outcome(ex))
    st.plotly_chart(logprob_chart(ex), key=f"{key}-logprobs", config={"displayModeBar": False})
    st.plotly_chart(margin_chart(ex), key=f"{key}-margin", config={"displayModeBar": False})
    st.caption(chart_text(ex))
    moved_c, moved_r = last.reward_chosen / ex.beta, last.reward_rejected / ex.beta
    st.markdown(f"How far the model moved from the reference: log π − log π_ref is {moved_c:+.2f} for the chosen "
                f"answer and {moved_r:+.2f} for the rejected one. A larger β reaches the same margin with a smaller "
                "move.")
    with st.expander("Each answer token by token (log p of each token given everything before it)"):
        left, right = st.columns(2)
        for col, which, before in ((left, "chosen", ex.chosen_before), (right, "rejected", ex.rejected_before)):
            col.markdown(f"**{which.capitalize()}**: {len(before.terms)} tokens; their sum at step 0 is "
                         f"{before.total:.2f}.")
            col.dataframe(token_rows(ex, which), hide_index=True, key=f"{key}-{which}-tokens")
        if ex.chosen_before.dropped or ex.rejected_before.dropped:
            st.caption("The prompt was longer than the model's context allows with these answers: its oldest "
                       f"tokens were left out ({ex.chosen_before.dropped} for the chosen answer, "
                       f"{ex.rejected_before.dropped} for the rejected one).")


def render(params: PreferencePairParams, key: str) -> None:
    me = session.learner()
    source = model_source.pick(me.id, key=f"{key}-model")
    model, tokenizer = model_source.load_model(source)
    found = run_text.trained_text(me.id, source.run_dir, source.own)
    trained_on = found[2] if found else "a text this course does not know"
    render_for(model, tokenizer, f"{source.label}, trained on {trained_on}", params, key)
