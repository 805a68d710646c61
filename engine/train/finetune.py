"""Fine-tuning: a trained model goes on learning from a second corpus, and the text is fitted to its tokenizer.

A fine-tuning run starts from another run's checkpoint (the learner's, or the reference model in data/reference/):
its weights, tokenizer and model shape, but new text, a fresh optimizer, a fresh warm-up + cosine to a lower peak
(`finetune_config`) and its own step count from 0; resume, by contrast, continues the same run. It goes through the
run manager like any run (`submit(config, new_text, finetune_from=run_dir, original_text=old_text)`), and with
`original_text` the evaluations (engine.train.evaluate) measure the old corpus too (`val_loss_original`), so a page
can show the old text's loss rise (forgetting) as the new one's falls. A checkpoint's tokenizer is fixed (one
embedding row per token), so `fit_text` replaces each character it lacks with one it has ("?" when it can, else a
space) and counts them: replacing keeps the text's shape where dropping would not (`f(x)` becomes `f?x?`, not `fx`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.train.config import TrainConfig
from engine.transform.tokenization import CharTokenizer, Tokenizer

REPLACEMENTS = ("?", " ")  # the replacement character, in order of preference: the first the vocabulary has
FINETUNE_LR_SCALE = 0.3  # the peak learning rates of a fine-tune, as a fraction of the run's own (see finetune_config)
SHOWN_UNKNOWN = 12  # missing characters listed in a report (the most frequent first)


@dataclass(frozen=True)
class FittedText:
    """A text made encodable by a fixed tokenizer, and what it took.

    `replaced` counts characters of the original text the vocabulary lacks (each became `replacement`), `total`
    the characters of the text, `unknown` each missing character with its count, most frequent first.
    """

    text: str
    replaced: int
    total: int
    replacement: str | None
    unknown: dict[str, int] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """The share of the text's characters that were replaced (0.0 for an empty text)."""
        return self.replaced / self.total if self.total else 0.0

    def sentence(self) -> str:
        """What a learner reads about it, e.g. in the run's notes.

        >>> print(fit_text("a_b{c}", CharTokenizer.from_text("abc?")).sentence())
        The model's tokenizer has no token for 3 of the 6 characters of the new text (50.0%: "_", "{", "}"), so each became "?".
        """
        if not self.replaced:
            return "Every character of the new text is in the model's vocabulary."
        shown = ", ".join(f'"{ch}"' if ch.isprintable() else repr(ch) for ch in list(self.unknown)[:SHOWN_UNKNOWN])
        more = ", ..." if len(self.unknown) > SHOWN_UNKNOWN else ""
        return (f"The model's tokenizer has no token for {self.replaced:,} of the {self.total:,} characters of the "
                f'new text ({100 * self.fraction:.1f}%: {shown}{more}), so each became "{self.replacement}".')

    def report(self) -> dict[str, Any]:
        """Plain JSON-able numbers for a run's folder and snapshot (the text itself left out)."""
        return {"replaced_chars": self.replaced, "total_chars": self.total, "replaced_fraction": self.fraction,
                "replacement": self.replacement, "unknown_chars": dict(list(self.unknown.items())[:SHOWN_UNKNOWN]),
                "distinct_unknown": len(self.unknown)}


def _encodable(tokenizer: Tokenizer, ch: str) -> bool:
    if isinstance(tokenizer, CharTokenizer):
        return ch in tokenizer.stoi
    try:  # byte-level BPE: every character is some bytes it knows, so this is a check, not a hope
        return tokenizer.decode(tokenizer.encode(ch)) == ch
    except (ValueError, KeyError, IndexError):
        return False


def replacement_for(tokenizer: Tokenizer) -> str:
    """The character that stands in for ones the vocabulary lacks: "?" if it has one, else a space, else its
    first token.

    >>> replacement_for(CharTokenizer.from_text("ab?")), replacement_for(CharTokenizer.from_text("ab "))
    ('?', ' ')
    """
    for ch in REPLACEMENTS:
        if _encodable(tokenizer, ch):
            return ch
    return tokenizer.id_to_token(0)


def fit_text(text: str, tokenizer: Tokenizer) -> FittedText:
    """`text` with every character `tokenizer` cannot encode replaced by `replacement_for(tokenizer)`.

    >>> fitted = fit_text("a_b{c}", CharTokenizer.from_text("abc?"))
    >>> fitted.text, fitted.replaced, fitted.unknown
    ('a?b?c?', 3, {'_': 1, '{': 1, '}': 1})
    >>> fit_text("abc", CharTokenizer.from_text("abc")).replaced
    0
    """
    counts = Counter(text)
    unknown = {ch: n for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
               if not _encodable(tokenizer, ch)}
    if not unknown:
        return FittedText(text, 0, len(text), None)
    stand_in = replacement_for(tokenizer)
    fitted = text.translate({ord(ch): stand_in for ch in unknown})
    return FittedText(fitted, sum(unknown.values()), len(text), stand_in, unknown)


def finetune_config(config: TrainConfig, lr_scale: float = FINETUNE_LR_SCALE, **changes: Any) -> TrainConfig:
    """`config` with its peak learning rates scaled by `lr_scale` (and any `changes`), for a fine-tune.

    A trained model sits in a good valley already, and fine-tunes usually use a peak a few times lower than
    pre-training's. 0.3 of it learns the new text almost as fast as the full rate and forgets less of the old; a
    lower rate forgets less still and learns slower (measured on the reference model: docs/training-notes.md).
    `changes` are named as in the flat config (TrainConfig.with_changes).

    >>> c = finetune_config(TrainConfig(lr=3e-3, muon_lr=0.04), max_steps=100)
    >>> round(c.lr, 6), round(c.muon_lr, 4), c.max_steps
    (0.0009, 0.012, 100)
    """
    if not lr_scale > 0:
        raise ValueError(f"lr_scale must be positive, not {lr_scale}")
    return config.with_changes(lr=config.lr * lr_scale, muon_lr=config.muon_lr * lr_scale, **changes)


@dataclass(frozen=True)
class Shift:
    """The losses on both corpora before (step 0) and after fine-tuning, for the page's headline."""

    new_before: float | None
    new_after: float | None
    original_before: float | None
    original_after: float | None


def loss_shift(metrics: list[dict[str, Any]]) -> Shift:
    """The first and last evaluation of each corpus in a run's records (keys as engine.train.evaluate writes them).

    >>> loss_shift([{"step": 0, "val_loss": 3.0, "val_loss_original": 1.6}, {"step": 5, "val_loss": None},
    ...             {"step": 10, "val_loss": 2.1, "val_loss_original": 1.9}])
    Shift(new_before=3.0, new_after=2.1, original_before=1.6, original_after=1.9)
    """
    new = [r["val_loss"] for r in metrics if r.get("val_loss") is not None]
    old = [r["val_loss_original"] for r in metrics if r.get("val_loss_original") is not None]
    return Shift(new[0] if new else None, new[-1] if new else None, old[0] if old else None,
                 old[-1] if old else None)
