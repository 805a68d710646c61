"""Counting models: the loss a "model" reaches with no neural network at all, only tallies of the training text.

Three landmarks every loss chart in the course can draw, each the held-out loss of a simpler rule:
- **uniform**: every token equally likely, so the loss is ln V; an untrained transformer starts here.
- **token counts** (a unigram model): p(next) = how often that token appears in the training text.
- **token pairs** (a bigram model): p(next | previous) = how often `previous` was followed by `next`: lesson 2's
  table of next-character counts made into a model, and the line a transformer has to beat (below it, the
  network has learned something one character of context cannot tell).

Each is fitted on the training split and scored on the validation split, exactly as a training run scores itself
(engine.transform.data.TextDataset's 90/10 split). Pairs never seen in training get a share of the token-count model
(additive smoothing towards the unigram, a Dirichlet prior), so no held-out pair gets probability zero. What they
come to on Tiny Shakespeare: docs/benchmarks.md, "Figures behind choices in the code".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

PAIR_PRIOR = 1.0  # how many "pretend" occurrences of the unigram distribution each context gets: the textbook
# choice, and the held-out loss hardly depends on it (docs/benchmarks.md)
MAX_PAIR_VOCAB = 4096  # a V x V table of counts: 4096² int64 is 128 MiB; bigger vocabularies skip the pairs model


@dataclass(frozen=True)
class CountLosses:
    """Held-out losses (nats per token) of the three counting models; `pairs` is None when V is too large."""

    vocab_size: int
    uniform: float
    counts: float
    pairs: float | None


@dataclass(frozen=True)
class CountModel:
    """The fitted tables: unigram probabilities (V,) and bigram probabilities (V, V), row = previous token."""

    unigram: torch.Tensor  # (V,) p(next)
    bigram: torch.Tensor | None  # (V, V) p(next | previous), rows sum to 1

    def pair_probability(self, previous: int, nxt: int) -> float:
        table = self.bigram if self.bigram is not None else self.unigram.expand(len(self.unigram), -1)
        return float(table[previous, nxt])


def fit_counts(train_ids: torch.Tensor, vocab_size: int) -> CountModel:
    """Tally the training ids (N,) into unigram and bigram probability tables.

    >>> m = fit_counts(torch.tensor([0, 1, 0, 1, 0, 1]), vocab_size=3)
    >>> [round(p, 3) for p in m.unigram.tolist()]   # 0 and 1 three times each; 2 never (a little smoothing)
    [0.492, 0.492, 0.016]
    >>> round(m.pair_probability(0, 1), 3)           # 0 was always followed by 1
    0.873
    """
    ids = train_ids.long()
    counts = torch.bincount(ids, minlength=vocab_size).double()  # (V,)
    unigram = (counts + 0.1) / (counts.sum() + 0.1 * vocab_size)  # add-0.1: unseen tokens keep a little mass
    if vocab_size > MAX_PAIR_VOCAB:
        return CountModel(unigram=unigram, bigram=None)
    pair_index = ids[:-1] * vocab_size + ids[1:]  # (N-1,) one number per (previous, next) pair
    pairs = torch.bincount(pair_index, minlength=vocab_size * vocab_size).double().view(vocab_size, vocab_size)
    bigram = (pairs + PAIR_PRIOR * unigram) / (pairs.sum(dim=1, keepdim=True) + PAIR_PRIOR)  # (V, V)
    return CountModel(unigram=unigram, bigram=bigram)


def score(model: CountModel, ids: torch.Tensor) -> tuple[float, float | None]:
    """Mean −ln p over `ids` (N,) for the unigram and the bigram model (first token scored by the unigram alone)."""
    ids = ids.long()
    uni = float(-model.unigram[ids].log().mean())
    if model.bigram is None:
        return uni, None
    first = -model.unigram[ids[:1]].log()  # (1,)
    rest = -model.bigram[ids[:-1], ids[1:]].log()  # (N-1,)
    return uni, float(torch.cat([first, rest]).mean())


def count_losses(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> CountLosses:
    """Fit the counting models on `train_ids` and score them on `val_ids`: the loss landmarks of one dataset.

    >>> text = torch.tensor([0, 1, 2] * 50)          # a text that always goes 0 -> 1 -> 2 -> 0
    >>> c = count_losses(text[:120], text[120:], vocab_size=4)
    >>> round(c.uniform, 3), round(c.counts, 2), c.pairs < 0.1   # pairs predict it almost perfectly
    (1.386, 1.1, True)
    """
    model = fit_counts(train_ids, vocab_size)
    counts, pairs = score(model, val_ids)
    return CountLosses(vocab_size=vocab_size, uniform=math.log(vocab_size), counts=counts, pairs=pairs)


@dataclass(frozen=True)
class Surprise:
    """One character of the learner's line under the pairs model: how likely it was, and the loss it costs."""

    char: str
    previous: str
    p: float
    loss: float  # −ln p, in nats


def surprise_line(model: CountModel, line_ids: list[int], line_chars: list[str]) -> list[Surprise]:
    """For every character after the first: the probability the pairs model gave it, given the one before, and
    −ln p. The mean of the `loss` column is exactly the loss a training run would report on this line.

    >>> m = fit_counts(torch.tensor([0, 1, 0, 1, 0, 1]), vocab_size=3)
    >>> [(s.char, round(s.p, 2), round(s.loss, 2)) for s in surprise_line(m, [0, 1, 2], ["a", "b", "c"])]
    [('b', 0.87, 0.14), ('c', 0.01, 5.24)]
    """
    out = []
    for i in range(1, len(line_ids)):
        p = model.pair_probability(line_ids[i - 1], line_ids[i])
        out.append(Surprise(char=line_chars[i], previous=line_chars[i - 1], p=p, loss=-math.log(p)))
    return out


LANDMARKS_FILE = "landmarks.json"


def landmark_lines(losses: CountLosses, unit: str = "character") -> list[dict[str, float | str]]:
    """The chart lines for a run, labelled in the run's own unit ("character" or "token").

    >>> landmark_lines(CountLosses(65, 4.1744, 3.347, 2.491))
    [{'label': 'random guessing: ln 65 = 4.17', 'loss': 4.1744}, {'label': 'character counts: 3.35', 'loss': 3.347}, \
{'label': 'character pairs: 2.49', 'loss': 2.491}]
    """
    lines: list[dict[str, float | str]] = [
        {"label": f"random guessing: ln {losses.vocab_size} = {losses.uniform:.2f}", "loss": round(losses.uniform, 4)},
        {"label": f"{unit} counts: {losses.counts:.2f}", "loss": round(losses.counts, 4)}]
    if losses.pairs is not None:
        lines.append({"label": f"{unit} pairs: {losses.pairs:.2f}", "loss": round(losses.pairs, 4)})
    return lines


def save_landmarks(run_dir: Path | str, train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int,
                   unit: str) -> None:
    """Write the run's counting-model losses beside its metrics, once (a resumed run keeps its file): the loss
    chart draws them as the lines the transformer has to beat."""
    path = Path(run_dir) / LANDMARKS_FILE
    if path.exists():
        return
    lines = landmark_lines(count_losses(train_ids, val_ids, vocab_size), unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lines), encoding="utf-8")


def read_landmarks(run_dir: Path | str) -> list[tuple[float, str]]:
    """(loss, label) pairs saved for a run; [] for a run that has none (older runs, or a damaged file)."""
    try:
        lines = json.loads((Path(run_dir) / LANDMARKS_FILE).read_text(encoding="utf-8"))
        return [(float(line["loss"]), str(line["label"])) for line in lines]
    except (OSError, ValueError, TypeError, KeyError):
        return []
