"""The gradient at the output (lesson 7): softmax followed by cross-entropy has the gradient p − y, on a real
prediction and a real training batch of a trained GPT.

For one prediction with scores (logits) z, probabilities p = softmax(z) and correct next token t, the loss is
−ln p_t and its gradient with respect to the scores is p − y, where y is the one-hot vector of t (Bridle 1990;
Goodfellow, Bengio & Courville 2016, "Deep Learning", section 6.2.2.3). Every wrong token's score gets a push
down of size p, the correct one a pull up of size 1 − p_t, and since p and y both sum to 1 the entries sum to 0.
Two show-me functions:
- `output_gradient`: p, y and p − y at the prompt's last position, checked against torch autograd;
- `batch_push`: p − y summed over one training batch (engine.transform.data), split per token into the push it
  gets where it was not the next token and the pull where it was. The output layer is the embedding table (weight
  tying, Press & Wolf 2017), so row v's gradient from the output is Σ_n (p_n[v] − y_n[v]) h_n / N, h_n the final
  vector at position n: a token that is never the target gets a positively weighted sum of final vectors, the
  same kind of push for every rare token. That is why rare tokens drift together (lesson 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.look_inside.inspection import residual_stream
from engine.look_inside.sampling import display_text, encode_prompt, eval_mode
from engine.transform.data import TextDataset
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

# --- one prediction -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenGradient:
    """One vocabulary entry at one prediction: its probability, its share of the one-hot target, and p − y."""

    id: int
    text: str  # display text (whitespace made visible)
    p: float
    y: float  # 1 for the token that really came next, else 0
    grad: float  # p − y: the gradient of the loss with respect to this token's score


@dataclass(frozen=True)
class OutputGradient:
    """p − y at the last position of a prompt, with autograd's answer for the same gradient."""

    context: str  # the last few tokens the model read, as display text
    dropped: int  # tokens cut from the front (the model reads block_size at most)
    target: TokenGradient  # the token that really came next
    best: TokenGradient  # the model's own likeliest next token
    rows: list[TokenGradient]  # the largest |p − y| first (ties: lower id first), the target always among them
    loss: float  # −ln p_target, this prediction's cross-entropy
    total: float  # Σ (p − y) over the whole vocabulary: 0 up to rounding
    autograd_max_diff: float  # max |(p − y) − autograd's gradient| over the whole vocabulary
    vocab_size: int


def p_minus_y(logits: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probabilities p, the one-hot target y and the gradient p − y for one prediction's scores (V,).

    >>> p, y, g = p_minus_y(torch.tensor([0.0, 0.0, 0.0, 0.0]), target=2)
    >>> p.tolist(), y.tolist(), g.tolist()
    ([0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0], [0.25, 0.25, -0.75, 0.25])
    """
    p = F.softmax(logits.float(), dim=-1)  # (V,)
    y = F.one_hot(torch.tensor(target), logits.size(-1)).to(p.dtype)  # (V,)
    return p, y, p - y


def autograd_logit_gradient(logits: torch.Tensor, target: int) -> torch.Tensor:
    """torch's own answer: the gradient of F.cross_entropy (the loss GPT.forward trains with) with respect to
    the scores (V,), by backpropagation, for comparison with the formula p − y."""
    with torch.enable_grad():
        z = logits.detach().float().clone().requires_grad_(True)  # (V,): a fresh leaf, outside any no-grad block
        loss = F.cross_entropy(z.unsqueeze(0), torch.tensor([target]))  # (1, V), (1,)
        (grad,) = torch.autograd.grad(loss, [z])
    return grad  # (V,)


def output_gradient(model: GPT, tokenizer: Tokenizer, prompt: str, target: int, top: int = 10) -> OutputGradient:
    """Show-me function: the gradient of the loss with respect to the model's scores after `prompt` when the
    token `target` (an id) really came next, worked out as p − y and by torch autograd.

    Why both: p − y is the formula a learner can read (each wrong token pushed down by its probability, the right
    one pulled up by what it lacked of 1); autograd is what training really runs. They agree to float rounding.
    """
    if not 0 <= target < tokenizer.vocab_size:
        raise ValueError(f"token id {target} is not in this vocabulary of {tokenizer.vocab_size}")
    ids, dropped = encode_prompt(tokenizer, prompt, model.config.block_size)
    idx = torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device)  # (1, T)
    with eval_mode(model):
        logits, _ = model(idx, last_only=True)  # (1, 1, V)
    logits = logits[0, -1].float().cpu()  # (V,)
    p, y, grad = p_minus_y(logits, target)  # (V,) each
    auto = autograd_logit_gradient(logits, target)  # (V,)

    def row(i: int) -> TokenGradient:
        return TokenGradient(i, display_text(tokenizer, i), float(p[i]), float(y[i]), float(grad[i]))

    order = sorted(range(len(grad)), key=lambda i: (-abs(float(grad[i])), i))[:top]
    if target not in order:
        order[-1] = target
    context = "".join(display_text(tokenizer, i) for i in ids[-12:])
    return OutputGradient(
        context=context, dropped=dropped, target=row(target), best=row(int(torch.argmax(p))),
        rows=[row(i) for i in order], loss=float(-torch.log(p[target])), total=float(grad.double().sum()),
        autograd_max_diff=float((grad - auto).abs().max()), vocab_size=len(grad),
    )


# --- one training batch ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPush:
    """What one vocabulary entry's score got over a whole batch."""

    id: int
    text: str
    count: int  # positions where it was the next token
    read: int  # positions where it was read as input
    push: float  # Σ p over positions where it was NOT next (≥ 0): pushed down there
    pull: float  # Σ (1 − p) over positions where it was next (≥ 0): pulled up there

    @property
    def net(self) -> float:
        """Σ over the batch of p − y for this token: push − pull."""
        return self.push - self.pull


@dataclass(frozen=True)
class BatchPush:
    """p − y over one training batch, per token, and what it does to the tied table's rows."""

    batch_size: int
    block_size: int
    seed: int
    loss: float  # the batch's mean cross-entropy, as GPT.forward computes it
    tokens: list[TokenPush]  # the whole vocabulary, most often next first (ties: lower id first)
    never_next: list[int]  # ids never the next token in this batch: pushes only
    untouched: list[int]  # ids neither read nor next: the output side is their row's whole gradient
    frequent: list[int]  # the most frequent next tokens, compared with never_next below
    cos_never_next: float | None  # mean cosine between the gradient rows of never_next (None: fewer than 2)
    cos_frequent: float | None  # the same among `frequent`
    autograd_max_diff: float | None  # rows of `untouched`: formula against autograd of the whole loss (None: none)


def mean_pairwise_cosine(rows: torch.Tensor) -> float | None:
    """The average cosine similarity over all pairs of distinct rows (K, C); None with fewer than two rows.

    >>> mean_pairwise_cosine(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))  # pairs: 1, 0, 0
    0.3333333432674408
    """
    k = rows.size(0)
    if k < 2:
        return None
    unit = F.normalize(rows.double(), dim=1)  # (K, C)
    sims = unit @ unit.T  # (K, K), 1 on the diagonal
    return float(((sims.sum() - sims.diagonal().sum()) / (k * k - k)).float())


def batch_push(
    model: GPT, tokenizer: Tokenizer, text: str, batch_size: int = 32, seed: int = 0, frequent: int = 10,
) -> BatchPush:
    """Show-me function: one real training batch (`batch_size` windows of block_size from the first 90% of `text`,
    drawn as the trainer draws them, seeded), and p − y summed over its B × T predictions, per token.

    Why split into push and pull: a frequent token is pulled where it comes next and pushed everywhere else, and
    the two nearly cancel; a token that never comes next is only pushed. Through the tied table, its row's gradient
    is Σ_n p_n[v] h_n / N, a positively weighted sum of the batch's final vectors: every such token gets the same kind
    of push, and `cos_never_next` measures how alike those pushes are. For tokens the batch did not read either, it
    is the row's whole gradient, which autograd on the model's own loss confirms (`autograd_max_diff`).
    """
    T = model.config.block_size
    data = TextDataset(text, tokenizer)
    data.check_block_size(T)
    x, y = data.get_batch("train", batch_size, T, generator=torch.Generator().manual_seed(seed))  # (B, T) each
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    V = model.config.vocab_size
    table = model.transformer.wte.weight  # (padded V, C): the same Parameter as lm_head.weight
    with eval_mode(model):
        with torch.enable_grad():
            logits, loss = model(x, y)  # (B, T, V), the mean cross-entropy training minimises
            (auto,) = torch.autograd.grad(loss, [table])  # (padded V, C): the table's gradient, both of its jobs
        _, _, outputs = residual_stream(model, x)  # the forward again, keeping the final block's output
        h = model.transformer.ln_f(outputs[-1]).detach().reshape(-1, table.size(1)).float()  # (N, C) final vectors
    p = F.softmax(logits.detach().float().reshape(-1, V), dim=-1)  # (N, V)
    onehot = F.one_hot(y.reshape(-1), V).float()  # (N, V)
    rows = (p - onehot).T @ h / h.size(0)  # (V, N) @ (N, C) -> (V, C): the output side of each row's gradient
    push = (p * (1 - onehot)).sum(0)  # (V,)
    pull = ((1 - p) * onehot).sum(0)  # (V,)
    counts = onehot.sum(0).long()  # (V,)
    read = torch.bincount(x.reshape(-1), minlength=V)[:V]  # (V,)

    order = sorted(range(V), key=lambda i: (-int(counts[i]), i))
    never = [i for i in order if counts[i] == 0]
    untouched = [i for i in never if read[i] == 0]
    top = [i for i in order if counts[i] > 0][:frequent]
    diff = None
    if untouched:
        diff = float((auto[untouched].float().cpu() - rows[untouched].cpu()).abs().max())
    tokens = [TokenPush(i, display_text(tokenizer, i), int(counts[i]), int(read[i]), float(push[i]), float(pull[i]))
              for i in order]
    return BatchPush(
        batch_size=batch_size, block_size=T, seed=seed, loss=float(loss.detach()), tokens=tokens, never_next=never,
        untouched=untouched, frequent=top, cos_never_next=mean_pairwise_cosine(rows[never]),
        cos_frequent=mean_pairwise_cosine(rows[top]), autograd_max_diff=diff,
    )
