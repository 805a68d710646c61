"""Learning from a preference: one prompt, two answers, and a person's verdict that one is better. Shown on a real
model with numbers, so the learner can follow DPO's arithmetic term by term.

A pair says "for this prompt, `chosen` is better than `rejected`". RLHF (Christiano et al. 2017; Ouyang et al. 2022,
InstructGPT) first trains a reward model on many such pairs: it gives each answer a score r, and the
Bradley–Terry model (Bradley & Terry 1952) reads two scores as a probability, P(chosen beats rejected) =
σ(r_c − r_r). Training pushes that probability up (loss −log σ(r_c − r_r)): the preferred answer must score higher.
Then the language model is trained with reinforcement learning to write answers the reward model scores well,
with a penalty for drifting far from where it started.

DPO (Rafailov et al. 2023) reaches the same goal with no reward model and no sampling loop. It shows that the
RLHF objective's best policy π gives each answer the implicit reward β·(log π(answer) − log π_ref(answer)): how much
more likely the model made it than the frozen starting model (the reference) did. Put those rewards into
Bradley–Terry and train the model itself on the pairs:

    margin = β·(log π(c) − log π_ref(c)) − β·(log π(r) − log π_ref(r))
    loss   = −log σ(margin)

At the start π = π_ref, so both rewards are 0, the margin is 0, σ(0) = 1/2 and the loss is log 2. The loss only
cares about the gap: it falls when the chosen answer gains on the rejected one relative to the reference, and both
log-probabilities may fall while it does. β sets how strongly a gap counts, so a small β lets the model move further
from the reference before the loss is satisfied.

Show-me functions, all plain data: `sequence_logprob` (the log-probability of a completion, token by token),
`dpo_worked_example` (real DPO steps on one pair, on a copy of the model), `bradley_terry` (what a reward model's two
scores mean), and `dpo_loss` (the formula, on tensors). A completion's log-probability is the sum, over its tokens
only, of log p(token | everything before it); the prompt's own tokens are context, not scored. Prompt and completion
are encoded separately and joined, so the completion's tokens are its own whatever the tokenizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.device import single_thread
from engine.look_inside.sampling import display_text
from engine.train.finetune import fit_text
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

DEFAULT_LR = 3e-5  # AdamW's step size for the DPO steps (lesson 7's optimizer); weight decay off (see below)


@dataclass(frozen=True)
class TokenTerm:
    """One completion token's term in the sum: log p(token | prompt and the completion before it)."""

    token: str  # as shown: "␣" for a space, "↵" for a newline
    logprob: float  # natural log, ≤ 0


@dataclass(frozen=True)
class SequenceLogprob:
    """log p(completion | prompt) with its terms. `dropped`: prompt tokens cut from the front to fit the context."""

    terms: list[TokenTerm]
    total: float  # the sum of the terms' logprob
    prompt_tokens: int  # prompt tokens the model read (after any cut)
    dropped: int


@dataclass(frozen=True)
class DpoStep:
    """The numbers of one step of the worked example: before any update (step 0) or after `step` updates."""

    step: int
    policy_chosen: float  # log π(chosen | prompt): the model being trained
    policy_rejected: float  # log π(rejected | prompt)
    ref_chosen: float  # log π_ref(chosen | prompt): the frozen copy, the same at every step
    ref_rejected: float
    reward_chosen: float  # β·(log π(chosen) − log π_ref(chosen)): DPO's implicit reward
    reward_rejected: float
    margin: float  # reward_chosen − reward_rejected
    loss: float  # −log σ(margin)
    prob_chosen_wins: float  # σ(margin): Bradley–Terry's P(chosen beats rejected)


@dataclass(frozen=True)
class DpoExample:
    """The worked example: the settings, the two answers token by token before and after, and every step."""

    beta: float
    lr: float
    chosen_before: SequenceLogprob  # at step 0 (the reference's numbers too)
    rejected_before: SequenceLogprob
    chosen_after: SequenceLogprob  # after the last step
    rejected_after: SequenceLogprob
    steps: list[DpoStep]  # step 0, then one per update


@dataclass(frozen=True)
class RewardPair:
    """A reward model's two scores read as Bradley–Terry does."""

    score_chosen: float
    score_rejected: float
    prob_chosen_wins: float  # σ(score_chosen − score_rejected)
    loss: float  # −log of it: what training the reward model on this pair lowers


def bradley_terry(score_chosen: float, score_rejected: float) -> RewardPair:
    """Show-me function: what two scores mean. Only their difference counts: P(chosen beats rejected) =
    σ(r_c − r_r). A reward model is trained so that this is high on the pairs people ranked, that is so the
    preferred answer scores higher; DPO's margin goes through the very same σ.

    >>> p = bradley_terry(2.0, 0.5); round(p.prob_chosen_wins, 3), round(p.loss, 3)
    (0.818, 0.201)
    >>> bradley_terry(1.0, 1.0).prob_chosen_wins, round(bradley_terry(7.0, 7.0).loss, 4)  # equal scores: a coin toss
    (0.5, 0.6931)
    """
    diff = torch.tensor(score_chosen - score_rejected, dtype=torch.float64)
    return RewardPair(score_chosen, score_rejected, float(torch.sigmoid(diff)), float(-F.logsigmoid(diff)))


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO's loss and margin from the four log-probabilities (Rafailov et al. 2023, equation 7), any matching shapes.
    logsigmoid rather than log(sigmoid(...)): it stays exact when the margin is large, where σ rounds to 0 or 1.

    >>> zero = torch.tensor(-5.0)
    >>> loss, margin = dpo_loss(zero, zero, zero, zero, beta=0.1)  # policy = reference: a coin toss
    >>> round(float(loss), 4), float(margin)  # log 2 = 0.6931
    (0.6931, 0.0)
    """
    margin = beta * (policy_chosen - ref_chosen) - beta * (policy_rejected - ref_rejected)
    return -F.logsigmoid(margin), margin


def _checked(tokenizer: Tokenizer, text: str, what: str) -> list[int]:
    """`text`'s ids, or a ValueError naming the characters the tokenizer has no token for."""
    fitted = fit_text(text, tokenizer)
    if fitted.replaced:
        shown = ", ".join(repr(ch) for ch in fitted.unknown)
        raise ValueError(f"the {what} uses characters this model's tokenizer has no token for: {shown}")
    return tokenizer.encode(text)


def encode_pair(tokenizer: Tokenizer, prompt: str, completion: str, block_size: int) -> tuple[list[int], int, int]:
    """(ids, prompt tokens kept, prompt tokens dropped): prompt then completion, one sequence the model reads at
    once. The model sees `block_size` tokens, and predicting every completion token needs the one before it, so
    the sequence may be `block_size + 1` long (its last token is only predicted). A too-long prompt loses its oldest
    tokens, as generation does; a completion that alone does not fit is refused.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> tok = CharTokenizer.from_text("abc:")
    >>> encode_pair(tok, "ab:", "cab", block_size=4)
    ([2, 0, 3, 1, 2], 2, 1)
    >>> encode_pair(tok, "a", "bcab", block_size=4)
    Traceback (most recent call last):
    ...
    ValueError: the completion is 4 tokens long; this model reads 4 at once, so a completion may have at most 3 tokens (with one prompt token before it)
    """
    prompt_ids = _checked(tokenizer, prompt, "prompt")
    completion_ids = _checked(tokenizer, completion, "completion")
    if not prompt_ids:
        raise ValueError("the prompt is empty: the first completion token needs something before it to follow")
    if not completion_ids:
        raise ValueError("the completion is empty: there is nothing to score")
    if len(completion_ids) > block_size - 1:
        raise ValueError(f"the completion is {len(completion_ids)} tokens long; this model reads {block_size} at "
                         f"once, so a completion may have at most {block_size - 1} tokens (with one prompt token "
                         "before it)")
    kept = min(len(prompt_ids), block_size + 1 - len(completion_ids))
    return prompt_ids[len(prompt_ids) - kept:] + completion_ids, kept, len(prompt_ids) - kept


def completion_logprobs(model: GPT, ids: list[int], prompt_tokens: int) -> torch.Tensor:
    """log p(token | the tokens before it) for each completion token of `ids` (its first `prompt_tokens` are the
    prompt): (n_completion,), with a gradient if the model's parameters have one."""
    device = next(model.parameters()).device
    seq = torch.tensor(ids, dtype=torch.long, device=device)  # (T + 1,)
    logits, _ = model(seq[None, :-1])  # (1, T, V): position t predicts token t + 1
    exact = torch.promote_types(logits.dtype, torch.float32)  # half precision up to float32; float64 stays
    logp = F.log_softmax(logits[0].to(exact), dim=-1)  # (T, V)
    picked = logp.gather(1, seq[1:, None])[:, 0]  # (T,): log p of each actual next token
    return picked[prompt_tokens - 1:]  # (n_completion,): the prompt's own tokens are not scored


def _sequence(model: GPT, tokenizer: Tokenizer, ids: list[int], kept: int, dropped: int) -> SequenceLogprob:
    with torch.no_grad():
        terms = completion_logprobs(model, ids, kept)  # (n_completion,)
    shown = [TokenTerm(display_text(tokenizer, i), float(v)) for i, v in zip(ids[kept:], terms, strict=True)]
    return SequenceLogprob(shown, float(terms.sum()), kept, dropped)


def sequence_logprob(model: GPT, tokenizer: Tokenizer, prompt: str, completion: str) -> SequenceLogprob:
    """Show-me function: how likely the model finds `completion` after `prompt`, as the sum of its tokens'
    log-probabilities, each given everything before it. This one number per answer is all that DPO (and a reward
    model's training) needs from the model. The model is not changed.

    >>> from engine.transform.model import GPTConfig
    >>> from engine.transform.tokenization import CharTokenizer
    >>> tok = CharTokenizer.from_text("ab\\n"); _ = torch.manual_seed(0)
    >>> model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=3))
    >>> s = sequence_logprob(model, tok, "a\\n", "ba")
    >>> [t.token for t in s.terms], abs(s.total - sum(t.logprob for t in s.terms)) < 1e-6, s.total < 0
    (['b', 'a'], True, True)
    """
    ids, kept, dropped = encode_pair(tokenizer, prompt, completion, model.config.block_size)
    with single_thread():
        was_training = model.training
        model.eval()
        try:
            return _sequence(model, tokenizer, ids, kept, dropped)
        finally:
            model.train(was_training)


def dpo_worked_example(model: GPT, tokenizer: Tokenizer, prompt: str, chosen: str, rejected: str,
                       beta: float = 0.1, steps: int = 20, lr: float = DEFAULT_LR) -> DpoExample:
    """Show-me function: DPO on one preference pair, step by step, on a copy of `model` (which is not changed).

    The reference is a frozen copy: its log-probabilities are measured once. The policy is a second copy, trained
    with AdamW for `steps` steps on the DPO loss of this one pair (weight decay off, so only the pair moves it;
    evaluation mode, so no dropout blurs the numbers). The four log-probabilities, the two implicit rewards, the
    margin, the loss and σ(margin) are recorded before the first step and after each. On one torch thread
    (engine.device.single_thread): the lesson model's 20 steps take a fraction of a second on a CPU.

    >>> from engine.transform.model import GPTConfig
    >>> from engine.transform.tokenization import CharTokenizer
    >>> tok = CharTokenizer.from_text("abc\\n"); _ = torch.manual_seed(0)
    >>> model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=4))
    >>> ex = dpo_worked_example(model, tok, "a\\n", "bc", "cb", beta=0.5, steps=3, lr=1e-2)
    >>> round(ex.steps[0].loss, 4), ex.steps[0].prob_chosen_wins, len(ex.steps), ex.steps[-1].loss < ex.steps[0].loss
    (0.6931, 0.5, 4, True)
    """
    if beta <= 0:
        raise ValueError("β must be above 0: it scales the rewards, and at 0 every pair is a coin toss")
    if steps < 1:
        raise ValueError("at least one DPO step is needed to see anything move")
    block = model.config.block_size
    c_ids, c_kept, c_dropped = encode_pair(tokenizer, prompt, chosen, block)
    r_ids, r_kept, r_dropped = encode_pair(tokenizer, prompt, rejected, block)
    with single_thread():
        reference = copy.deepcopy(model).eval().requires_grad_(False)  # frozen: π_ref
        policy = copy.deepcopy(model).eval().requires_grad_(True)  # trained: π
        for p in policy.parameters():
            p.grad = None
        with torch.no_grad():
            ref_c = completion_logprobs(reference, c_ids, c_kept).sum()  # scalar
            ref_r = completion_logprobs(reference, r_ids, r_kept).sum()
        chosen_before = _sequence(policy, tokenizer, c_ids, c_kept, c_dropped)
        rejected_before = _sequence(policy, tokenizer, r_ids, r_kept, r_dropped)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
        records = []
        for step in range(steps + 1):
            pol_c = completion_logprobs(policy, c_ids, c_kept).sum()  # scalar, with a gradient
            pol_r = completion_logprobs(policy, r_ids, r_kept).sum()
            loss, margin = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta)
            c, r, m = float(pol_c.detach()), float(pol_r.detach()), margin.detach()
            records.append(DpoStep(
                step=step, policy_chosen=c, policy_rejected=r, ref_chosen=float(ref_c), ref_rejected=float(ref_r),
                reward_chosen=beta * (c - float(ref_c)), reward_rejected=beta * (r - float(ref_r)), margin=float(m),
                loss=float(loss.detach()), prob_chosen_wins=float(torch.sigmoid(m)),
            ))
            if step == steps:
                break  # the last record is after the last update: no update after it
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        chosen_after = _sequence(policy, tokenizer, c_ids, c_kept, c_dropped)
        rejected_after = _sequence(policy, tokenizer, r_ids, r_kept, r_dropped)
    return DpoExample(beta, lr, chosen_before, rejected_before, chosen_after, rejected_after, records)
