"""Evaluation beyond the loss: bits per byte, a multiple-choice benchmark scored by log-likelihood, contamination.

A loss in nats per token depends on the tokenizer: a BPE token covers several bytes, so each prediction has more
to get right. `bits_per_byte` divides the same total by the text's UTF-8 bytes instead, the yardstick that compares
models with different tokenizers (Gao et al. 2020, "The Pile", section 4).

`choice_benchmark` builds HellaSwag-style items (Zellers et al. 2019) from a text: a context, its true
continuation and three continuations taken from elsewhere in the same text. `score_choices` scores them the way
lm-evaluation-harness does: the log-likelihood of each ending given the context, the model picking the highest;
`acc_norm` divides each by the ending's length in characters first, so a longer ending is not punished for having
more characters to predict (Gao et al. 2021, "A framework for few-shot language model evaluation").

`contamination` looks for the items in the training text with lesson 3's shingles (engine.extract.dedup): the share
of an item's word 5-grams that occur anywhere in the training text. GPT-3 (Brown et al. 2020, appendix C) checked its
benchmarks against its training data with 13-gram overlaps in the same way.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.extract.dedup import DEFAULT_SHINGLE, shingles
from engine.look_inside.domain_loss import DOMAIN_CHARS, VAL_FRACTION, held_out_slice, ids_loss, readable
from engine.look_inside.sampling import eval_mode
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

CHOICES = 4  # endings per item, as in HellaSwag
CONTEXT_CHARS = 40  # characters of context before the cut (a word start)
ENDING_CHARS = 20  # characters of ending at least, then on to the end of the word
FOUND_SHARE = 0.5  # an item counts as found when half of its word 5-grams occur in the training text


@dataclass(frozen=True)
class BitsPerByte:
    """A model's loss on one text, per token and per byte."""

    loss: float  # mean −ln p of the next token, nats per token
    tokens: int  # predictions scored
    bytes: int  # UTF-8 bytes of the text those predictions cover

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens

    @property
    def bits_per_byte(self) -> float:
        """Total nats → bits (÷ ln 2), spread over the bytes.

        >>> round(BitsPerByte(loss=3.2, tokens=100, bytes=320).bits_per_byte, 3)
        1.443
        """
        return self.loss * self.tokens / math.log(2) / self.bytes


@dataclass(frozen=True)
class Question:
    """One multiple-choice item: which of `endings` really followed `context`?"""

    context: str
    endings: list[str]  # CHOICES continuations, the true one among them
    answer: int  # index of the true ending in `endings`
    start: int  # where the context starts in the text it was cut from


@dataclass(frozen=True)
class ItemScore:
    loglik: list[float]  # per ending: Σ ln p(ending's tokens | context), nats
    tokens: list[int]  # per ending: tokens scored
    chars: list[int]  # per ending: characters
    answer: int

    @property
    def per_char(self) -> list[float]:
        return [ll / c for ll, c in zip(self.loglik, self.chars, strict=True)]

    @property
    def pick(self) -> int:
        return max(range(len(self.loglik)), key=self.loglik.__getitem__)

    @property
    def pick_norm(self) -> int:
        per = self.per_char
        return max(range(len(per)), key=per.__getitem__)


@dataclass(frozen=True)
class BenchmarkScore:
    items: list[ItemScore]
    skipped: int  # items the tokenizer could not read (a character it has no token for)

    @property
    def accuracy(self) -> float:
        return sum(i.pick == i.answer for i in self.items) / len(self.items) if self.items else math.nan

    @property
    def accuracy_norm(self) -> float:
        return sum(i.pick_norm == i.answer for i in self.items) / len(self.items) if self.items else math.nan

    @property
    def standard_error(self) -> float:
        """How far the accuracy could move by the luck of which items were drawn: √(p(1−p)/n).

        >>> s = BenchmarkScore([ItemScore([0.0, -1.0], [1, 1], [1, 1], 0)] * 3 + [ItemScore([-1.0, 0.0], [1, 1], [1, 1], 0)], 0)
        >>> s.accuracy, round(s.standard_error, 3)
        (0.75, 0.217)
        """
        p, n = self.accuracy, len(self.items)
        return math.sqrt(p * (1 - p) / n) if n else math.nan


@dataclass(frozen=True)
class Contamination:
    overlap: list[float]  # per item: share of its context + true ending's word shingles found in the training text
    threshold: float
    shingle_size: int

    @property
    def found(self) -> list[bool]:
        return [o >= self.threshold for o in self.overlap]


def bits_per_byte(model: GPT, tokenizer: Tokenizer, text: str) -> BitsPerByte:
    """The model's loss on `text`, measured as a run measures validation loss (windows of block_size,
    domain_loss.ids_loss), with the UTF-8 bytes of the tokens it predicted. Characters the tokenizer cannot read are
    left out first (domain_loss.readable)."""
    ids = tokenizer.encode(readable(tokenizer, text)[0])
    loss, n = ids_loss(model, ids)
    # ids_loss predicts ids[1 : n+1]; their bytes are those of the decoded prefix less the first token's
    covered = len(tokenizer.decode(ids[: n + 1]).encode("utf-8")) - len(tokenizer.decode(ids[:1]).encode("utf-8"))
    return BitsPerByte(loss, n, covered)


def held_out(text: str, chars: int = DOMAIN_CHARS) -> str:
    """The text every model's bits per byte is measured on: the start of its last tenth (domain_loss)."""
    return held_out_slice(text, chars)


def split(text: str) -> tuple[str, str]:
    """(training part, validation part): the first 90% and the last 10%, as engine.transform.data splits a run's text.

    >>> split("abcdefghij")
    ('abcdefghi', 'j')
    """
    cut = int(len(text) * (1.0 - VAL_FRACTION))
    return text[:cut], text[cut:]


def _word_starts(text: str) -> list[int]:
    """Positions where a word begins (a non-space after a space or line break).

    >>> _word_starts("to be, or")
    [3, 7]
    """
    return [i for i in range(1, len(text)) if text[i - 1].isspace() and not text[i].isspace()]


def _span(text: str, start: int, chars: int) -> str:
    """`chars` characters from `start`, then on to the end of the word they stop in.

    >>> _span("to be, or not", 0, 4)
    'to be,'
    """
    end = start + chars
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def choice_benchmark(text: str, n: int, seed: int = 0, context_chars: int = CONTEXT_CHARS,
                     ending_chars: int = ENDING_CHARS) -> list[Question]:
    """`n` items cut from `text` at word starts: about `context_chars` of context (from a word start), the true
    ending (`ending_chars` on to the end of a word) and CHOICES − 1 endings of the same kind cut from elsewhere in
    `text`. Items never overlap each other. Deterministic for a given seed.

    >>> qs = choice_benchmark("the cat sat on the mat and the dog lay on the rug by the door " * 20, 3, seed=1)
    >>> len(qs), [len(q.endings) for q in qs]
    (3, [4, 4, 4])
    """
    rng = random.Random(seed)
    starts = _word_starts(text)
    span = context_chars + ending_chars * 2
    cuts = [p for p in starts if p >= context_chars and p + ending_chars * 2 < len(text)]
    rng.shuffle(cuts)
    taken: list[tuple[int, int]] = []
    out: list[Question] = []
    for p in cuts:
        if len(out) == n:
            break
        lo, hi = p - context_chars, p + ending_chars * 2
        if any(lo < b and a < hi for a, b in taken):
            continue
        s = next(q for q in starts if q >= lo)  # the context starts at a word
        true = _span(text, p, ending_chars)
        others: list[str] = []
        for _ in range(50):
            q = rng.choice(cuts)
            ending = _span(text, q, ending_chars)
            if abs(q - p) > span and ending.strip() != true.strip() and ending not in others:
                others.append(ending)
            if len(others) == CHOICES - 1:
                break
        if len(others) < CHOICES - 1 or s >= p:
            continue
        answer = rng.randrange(CHOICES)
        endings = others[:answer] + [true] + others[answer:]
        taken.append((lo, hi))
        out.append(Question(text[s:p], endings, answer, s))
    if len(out) < n:
        raise ValueError(f"this text holds only {len(out)} separate items of this size, not {n}")
    return out


def score_choices(model: GPT, tokenizer: Tokenizer, questions: list[Question]) -> BenchmarkScore:
    """Σ ln p of each ending's tokens given its context, all items in one padded forward pass. The context is
    encoded apart from the ending (as lm-evaluation-harness does) and cut from the left to fit block_size."""
    rows: list[tuple[list[int], int]] = []  # (ids, tokens of ending) per (item, ending)
    kept: list[Question] = []
    block = model.config.block_size
    for q in questions:
        try:
            ctx = tokenizer.encode(q.context)
            ends = [tokenizer.encode(e) for e in q.endings]
        except ValueError:  # a character this tokenizer has no token for
            continue
        kept.append(q)
        for e in ends:
            e = e[: block]  # an ending longer than the window: score its first block tokens
            c = ctx[-(block + 1 - len(e)):] if len(e) < block + 1 else ctx[-1:]
            rows.append((c + e, len(e)))
    items: list[ItemScore] = []
    if rows:
        T = max(len(ids) for ids, _ in rows) - 1
        device = model.lm_head.weight.device
        x = torch.zeros(len(rows), T, dtype=torch.long, device=device)  # (R, T) inputs, 0-padded on the right
        y = torch.zeros(len(rows), T, dtype=torch.long, device=device)  # (R, T) the token after each input
        mask = torch.zeros(len(rows), T, dtype=torch.bool, device=device)  # (R, T) True on the ending's tokens
        for r, (ids, k) in enumerate(rows):
            L = len(ids) - 1
            x[r, :L] = torch.tensor(ids[:-1])
            y[r, :L] = torch.tensor(ids[1:])
            mask[r, L - k:L] = True
        with eval_mode(model):
            logits, _ = model(x)  # (R, T, V)
            logp = F.log_softmax(logits.float(), dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (R, T)
            sums = (logp * mask).sum(dim=1).tolist()  # (R,)
        for i, q in enumerate(kept):
            span = range(i * CHOICES, (i + 1) * CHOICES)
            items.append(ItemScore([sums[r] for r in span], [rows[r][1] for r in span],
                                   [len(e) for e in q.endings], q.answer))
    return BenchmarkScore(items, len(questions) - len(kept))


def contamination(questions: list[Question], training_text: str, shingle_size: int = DEFAULT_SHINGLE,
                  threshold: float = FOUND_SHARE) -> Contamination:
    """For each item, the share of its context + true ending's word shingles (lesson 3's normalised word k-grams)
    that occur anywhere in `training_text`. An item at or above `threshold` was, near enough, in the training data.

    >>> train = "and then the dog ran off into the dark green woods and was never seen again by anyone"
    >>> q = [Question("the dog ran off into the dark", [" green woods and was"], 0, 0),
    ...      Question("a cat sat quietly on a warm red", [" mat by the fire"], 0, 0)]
    >>> contamination(q, train).overlap
    [1.0, 0.0]
    """
    seen = shingles(training_text, shingle_size)
    overlap = []
    for q in questions:
        own = shingles(q.context + q.endings[q.answer], shingle_size)
        overlap.append(len(own & seen) / len(own))
    return Contamination(overlap, threshold, shingle_size)
