"""Preference learning (engine.post_training.preference): a completion's log-probability counts only its own tokens,
DPO's loss starts at log 2 and its gradient is the paper's, real DPO steps on one pair of the reference model lower
the loss and widen the gap, a larger β moves the model less, the model passed in is never changed, and prompts
that do not fit or use unknown characters are cut or refused with a reason."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.post_training.preference import (
    bradley_terry,
    completion_logprobs,
    dpo_loss,
    dpo_worked_example,
    encode_pair,
    sequence_logprob,
)
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer

PROMPT, CHOSEN, REJECTED = "ROMEO:\n", "I love thee, sweet lady.", "I hate thee, foul lady."


@pytest.fixture(scope="module")
def reference():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    return checkpoint.load_timeline_model(REFERENCE_DIR, step)


def _tiny(dtype: torch.dtype = torch.float32) -> tuple[GPT, CharTokenizer]:
    tok = CharTokenizer.from_text("abcde \n:")
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=12, vocab_size=tok.vocab_size)).to(dtype)
    return model.eval(), tok


def test_the_log_probability_counts_the_completion_tokens_only(reference) -> None:
    model, tok = reference
    s = sequence_logprob(model, tok, PROMPT, CHOSEN)
    assert [t.token for t in s.terms][:3] == ["I", "␣", "l"] and len(s.terms) == len(CHOSEN)
    assert s.total == pytest.approx(sum(t.logprob for t in s.terms), abs=1e-4) and s.total < 0
    assert s.prompt_tokens == len(PROMPT) and s.dropped == 0
    # the same number from the model's own cross-entropy, with the prompt's targets ignored (-100)
    ids = tok.encode(PROMPT + CHOSEN)
    x, y = torch.tensor([ids[:-1]]), torch.tensor([ids[1:]])
    y[0, : len(PROMPT) - 1] = -100
    with torch.no_grad():
        logits, _ = model(x)
    mean = F.cross_entropy(logits[0], y[0], ignore_index=-100)
    assert s.total == pytest.approx(-float(mean) * len(CHOSEN), rel=1e-5)
    # the prompt is read: another prompt gives the first completion token another probability
    other = sequence_logprob(model, tok, "JULIET:\n", CHOSEN)
    assert other.terms[0].logprob != pytest.approx(s.terms[0].logprob, abs=1e-4)


def test_dpo_starts_at_log_2_and_learns_the_pair_without_touching_the_model(reference) -> None:
    model, tok = reference
    before = [p.detach().clone() for p in model.parameters()]
    ex = dpo_worked_example(model, tok, PROMPT, CHOSEN, REJECTED, beta=0.1, steps=10, lr=3e-5)
    first, last = ex.steps[0], ex.steps[-1]
    assert [s.step for s in ex.steps] == list(range(11))
    assert first.loss == pytest.approx(math.log(2), abs=1e-6) and first.prob_chosen_wins == pytest.approx(0.5)
    assert first.policy_chosen == pytest.approx(first.ref_chosen, abs=1e-5) and first.margin == pytest.approx(0, abs=1e-6)
    assert all(b.loss < a.loss for a, b in zip(ex.steps, ex.steps[1:], strict=False))  # falls at every step
    gap = [s.policy_chosen - s.policy_rejected for s in ex.steps]
    assert gap[-1] > gap[0] + 1.0
    assert last.margin == pytest.approx(0.1 * (gap[-1] - gap[0]), rel=1e-4)  # the margin is β × the gap's growth
    assert last.loss == pytest.approx(-math.log(last.prob_chosen_wins), rel=1e-4)
    # σ(margin) is Bradley–Terry's probability for the two implicit rewards
    assert bradley_terry(last.reward_chosen, last.reward_rejected).prob_chosen_wins == pytest.approx(
        last.prob_chosen_wins, rel=1e-5)
    assert all(s.ref_chosen == first.ref_chosen for s in ex.steps)  # the reference never moves
    assert ex.chosen_before.total == pytest.approx(first.policy_chosen, abs=1e-4)
    assert ex.rejected_after.total == pytest.approx(last.policy_rejected, abs=1e-4)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())


def test_a_larger_beta_is_satisfied_with_a_smaller_move_from_the_reference(reference) -> None:
    model, tok = reference
    moves = []
    for beta in (0.03, 1.0):
        last = dpo_worked_example(model, tok, PROMPT, CHOSEN, REJECTED, beta=beta, steps=15, lr=3e-5).steps[-1]
        moves.append(abs(last.policy_chosen - last.ref_chosen) + abs(last.policy_rejected - last.ref_rejected))
    assert moves[1] < moves[0]


def test_the_dpo_loss_gradient_is_the_papers_and_matches_finite_differences() -> None:
    pc, pr, rc, rr = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (-3.0, -4.5, -3.2, -4.0))
    beta = 0.3
    loss, margin = dpo_loss(pc, pr, rc, rr, beta)
    loss.backward()
    weight = float(torch.sigmoid(-margin.detach()))  # σ(−margin): how wrong the pair still is
    assert float(pc.grad) == pytest.approx(-beta * weight, rel=1e-12)
    assert float(pr.grad) == pytest.approx(beta * weight, rel=1e-12)
    eps = 1e-6
    for i, g in enumerate((pc.grad, pr.grad)):
        args = [pc.detach(), pr.detach(), rc.detach(), rr.detach()]
        up = [a + eps if j == i else a for j, a in enumerate(args)]
        down = [a - eps if j == i else a for j, a in enumerate(args)]
        numeric = (float(dpo_loss(*up, beta)[0]) - float(dpo_loss(*down, beta)[0])) / (2 * eps)
        assert numeric == pytest.approx(float(g), rel=1e-6)


def test_on_a_model_the_gradient_is_beta_sigma_times_the_two_answers_gradients() -> None:
    """∇loss = −β σ(−margin) (∇log π(c) − ∇log π(r)), and log π's own gradient matches a finite difference."""
    model, tok = _tiny(torch.float64)
    c_ids, c_kept, _ = encode_pair(tok, "ab:", "cde", 12)
    r_ids, r_kept, _ = encode_pair(tok, "ab:", "edc", 12)
    params = [p for p in model.parameters()]

    def grads(value: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.flatten() for g in torch.autograd.grad(value, params)])

    with torch.no_grad():
        ref_c, ref_r = completion_logprobs(model, c_ids, c_kept).sum(), completion_logprobs(model, r_ids, r_kept).sum()
    pol_c, pol_r = completion_logprobs(model, c_ids, c_kept).sum(), completion_logprobs(model, r_ids, r_kept).sum()
    loss, margin = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=0.5)
    expected = -0.5 * torch.sigmoid(-margin.detach()) * (grads(pol_c) - grads(pol_r))
    pol_c, pol_r = completion_logprobs(model, c_ids, c_kept).sum(), completion_logprobs(model, r_ids, r_kept).sum()
    assert torch.allclose(grads(dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=0.5)[0]), expected, rtol=1e-9, atol=1e-12)

    direction = [torch.randn_like(p) for p in params]
    analytic = float(sum((g * d).sum() for g, d in zip(torch.autograd.grad(
        completion_logprobs(model, c_ids, c_kept).sum(), params), direction, strict=True)))
    eps = 1e-6
    with torch.no_grad():
        values = []
        for sign in (1, -1):
            for p, d in zip(params, direction, strict=True):
                p.add_(sign * eps * d)
            values.append(float(completion_logprobs(model, c_ids, c_kept).sum()))
            for p, d in zip(params, direction, strict=True):
                p.sub_(sign * eps * d)
    assert (values[0] - values[1]) / (2 * eps) == pytest.approx(analytic, rel=1e-5)


def test_bradley_terry_counts_only_the_gap() -> None:
    assert bradley_terry(3.0, 1.0).prob_chosen_wins == pytest.approx(bradley_terry(13.0, 11.0).prob_chosen_wins)
    assert bradley_terry(3.0, 1.0).prob_chosen_wins + bradley_terry(1.0, 3.0).prob_chosen_wins == pytest.approx(1.0)
    assert bradley_terry(2.0, 0.0).prob_chosen_wins == pytest.approx(1 / (1 + math.exp(-2)))
    assert bradley_terry(0.0, 0.0).loss == pytest.approx(math.log(2))
    assert bradley_terry(5.0, 0.0).loss < bradley_terry(0.0, 5.0).loss  # the preferred scoring higher: low loss


def test_a_long_prompt_is_cut_from_the_front_and_a_long_completion_is_refused() -> None:
    model, tok = _tiny()  # block_size 12
    s = sequence_logprob(model, tok, "abcdeabcdeabcde:", "ab ")  # 16 + 3 tokens: only 13 fit
    assert s.prompt_tokens == 10 and s.dropped == 6 and len(s.terms) == 3
    with pytest.raises(ValueError, match="at most 11 tokens"):
        sequence_logprob(model, tok, "a", "abcdeabcdeab")
    with pytest.raises(ValueError, match="at most 11 tokens"):
        dpo_worked_example(model, tok, "a", "ab", "abcdeabcdeab", steps=1)


def test_unknown_characters_and_empty_texts_are_refused_by_name() -> None:
    model, tok = _tiny()
    with pytest.raises(ValueError, match=r"completion uses characters .*'z', 'é'"):
        sequence_logprob(model, tok, "ab", "zzé")
    with pytest.raises(ValueError, match=r"prompt uses characters .*'Q'"):
        dpo_worked_example(model, tok, "Q:", "ab", "ba", steps=1)
    with pytest.raises(ValueError, match="prompt is empty"):
        sequence_logprob(model, tok, "", "ab")
    with pytest.raises(ValueError, match="completion is empty"):
        dpo_worked_example(model, tok, "a", "", "b", steps=1)
    with pytest.raises(ValueError, match="β must be above 0"):
        dpo_worked_example(model, tok, "a", "b", "c", beta=0.0)
