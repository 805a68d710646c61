"""What a mixture teaches: a trained model's loss on several kinds of text, and on text it wrote itself (lesson 3).

A model is good at what its mixture held. `domain_losses` scores it on a held-out slice of each corpus (the start
of the corpus's last 10%, where engine.transform.data.TextDataset puts its validation text, so even the corpus the
model trained on is scored on text it never read): the Shakespeare-only reference model finds Shakespeare easy and
code nearly as hard as guessing at random. A character the tokenizer has no token for cannot be scored (the model
gives it no probability at all, an infinite loss): such characters are counted, left out of the slice before it is
scored, and reported, so the loss shown is the loss on what the model can read.

`self_loss` is the test of synthetic data: the model writes text (its own sampler, seeded) and is scored on it. It
finds its own writing easy, easier the more the sampler favours its likeliest tokens (temperature below 1), because
the text holds nothing it did not already expect: training on a model's own output teaches its habits back to it.
Synthetic data helps when something that knows more writes it (a stronger model) or when it can be checked (code
that passes its tests). Losses are nats per token, measured as a training run measures them: windows of
block_size tokens, every position predicting the next (engine.transform.model.GPT.forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.look_inside.sampling import eval_mode
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

VAL_FRACTION = 0.1  # engine.transform.data.TextDataset: the last 10% of a text is its validation split
DOMAIN_CHARS = 8_000  # characters scored per corpus: a few thousand predictions, one forward pass on a CPU
SELF_TOKENS = 600  # tokens the model writes for `self_loss`
SHOWN_UNKNOWN = 12  # distinct unreadable characters a result lists


@dataclass(frozen=True)
class DomainLoss:
    """The model's loss on a held-out slice of one corpus."""

    name: str
    loss: float  # mean −ln p of the next token, nats per token
    tokens: int  # predictions scored
    chars: int  # characters in the slice, readable or not
    unknown: int  # characters in the slice the tokenizer has no token for: left out before scoring
    unknown_chars: str  # the commonest of them (at most SHOWN_UNKNOWN), commonest first

    @property
    def unknown_share(self) -> float:
        return self.unknown / self.chars if self.chars else 0.0


@dataclass(frozen=True)
class SelfLoss:
    """The model's loss on text it wrote itself."""

    text: str  # what it wrote (the prompt not included)
    temperature: float  # the sampler's temperature; the scoring always uses the model's own probabilities
    seed: int
    loss: float  # mean −ln p of each written token, nats per token
    tokens: int  # predictions scored


def held_out_slice(text: str, chars: int = DOMAIN_CHARS) -> str:
    """The first `chars` characters of `text`'s last tenth (all of that tenth when shorter).

    >>> held_out_slice("abcdefghij" * 10, chars=4)
    'abcd'
    >>> len(held_out_slice("x" * 50, chars=100))
    5
    """
    start = int(len(text) * (1.0 - VAL_FRACTION))
    return text[start:start + chars]


def readable(tokenizer: Tokenizer, text: str) -> tuple[str, int, str]:
    """`text` without the characters `tokenizer` cannot encode; how many were left out; the commonest of them.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> readable(CharTokenizer.from_text("ab "), "a_b (a)")
    ('ab a', 3, '()_')
    """
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    missing = set()
    for ch in counts:
        try:
            tokenizer.encode(ch)
        except ValueError:  # a character tokenizer without this character; byte-level BPE reads everything
            missing.add(ch)
    kept = "".join(ch for ch in text if ch not in missing)
    commonest = sorted(missing, key=lambda ch: (-counts[ch], ch))[:SHOWN_UNKNOWN]
    return kept, sum(counts[ch] for ch in missing), "".join(commonest)


def ids_loss(model: GPT, ids: list[int]) -> tuple[float, int]:
    """Mean loss of predicting each id from the ones before it, over consecutive windows of block_size (the first
    position of each window predicts from that one token, as in training); and how many predictions that was.

    Why windows and not one long row: the model reads at most block_size tokens, and a training run's validation
    loss averages over windows of exactly this shape, so the two numbers are comparable.
    """
    if len(ids) < 2:
        raise ValueError("need at least two tokens: one to read and one to predict")
    T = min(model.config.block_size, len(ids) - 1)
    n = (len(ids) - 1) // T  # whole windows; a tail shorter than T is left out
    row = torch.tensor(ids[: n * T + 1], dtype=torch.long, device=model.lm_head.weight.device)  # (n*T + 1,)
    x = row[:-1].view(n, T)  # (n, T) inputs
    y = row[1:].view(n, T)  # (n, T) the token after each input
    with eval_mode(model):
        _, loss = model(x, y)
    return float(loss), n * T


def domain_losses(model: GPT, tokenizer: Tokenizer, texts: dict[str, str],
                  chars: int = DOMAIN_CHARS) -> list[DomainLoss]:
    """The model's loss on a held-out slice (`held_out_slice`) of each text in `texts` (name -> whole corpus), in
    the order given. Characters the tokenizer cannot read are left out of the slice and counted; a slice with fewer
    than two readable tokens gets a loss of NaN and 0 predictions (there is nothing to score)."""
    out = []
    for name, text in texts.items():
        piece = held_out_slice(text, chars)
        kept, unknown, shown = readable(tokenizer, piece)
        ids = tokenizer.encode(kept)
        loss, n = ids_loss(model, ids) if len(ids) >= 2 else (math.nan, 0)
        out.append(DomainLoss(name, loss, n, len(piece), unknown, shown))
    return out


def self_loss(model: GPT, tokenizer: Tokenizer, temperature: float = 0.8, n_tokens: int = SELF_TOKENS,
              seed: int = 0, prompt: str = "\n") -> SelfLoss:
    """Let the model write `n_tokens` after `prompt` (GPT.generate, a seeded generator: the same seed, the same
    text), then score it on what it wrote, with its own probabilities (temperature changes what is written, never
    how it is scored). A prompt the tokenizer cannot read falls back to token 0."""
    try:
        start = tokenizer.encode(prompt) or [0]
    except ValueError:
        start = [0]
    start = start[-model.config.block_size:]
    device = model.lm_head.weight.device
    generator = torch.Generator(device=device).manual_seed(seed)
    with eval_mode(model):
        out = model.generate(torch.tensor([start], dtype=torch.long, device=device), n_tokens,  # (1, T) -> (1, T+n)
                             temperature=temperature, generator=generator)
    written = out[0, len(start):].tolist()
    loss, n = ids_loss(model, written)
    return SelfLoss(tokenizer.decode(written), temperature, seed, loss, n)
