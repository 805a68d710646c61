"""Tokenizers behind one small interface, so the trainer and the UI never care which one they hold.

Two kinds live here:
- `CharTokenizer`: one token per Unicode character, vocabulary = the characters of a corpus (as nanoGPT's
  shakespeare_char does). Simple, lossless, long sequences.
- byte-level BPE trained with Hugging Face `tokenizers` (added by the tokenization stage).

Every tokenizer can encode with offsets (so the UI can colour token spans in the original text), decode,
list its vocabulary, and round-trip through a plain JSON-able dict (so a run's checkpoint can carry it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Token:
    """One token as the UI draws it: its id, its text, and where it sits in the original string."""

    id: int
    text: str
    start: int  # offset of the first character in the original text
    end: int  # offset one past the last character


class Tokenizer(ABC):
    """What every tokenizer offers. `kind` names the class in saved dicts."""

    kind: str = "abstract"

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    @abstractmethod
    def decode(self, ids: list[int]) -> str: ...

    @abstractmethod
    def id_to_token(self, token_id: int) -> str: ...

    @abstractmethod
    def encode_with_offsets(self, text: str) -> list[Token]: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def vocab(self) -> dict[str, int]:
        """Token text -> id, for the whole vocabulary."""
        return {self.id_to_token(i): i for i in range(self.vocab_size)}


class CharTokenizer(Tokenizer):
    """One id per character seen in the training text, ids in sorted character order.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hole")
    [1, 3, 2, 0]
    >>> tok.decode([1, 0, 2, 2, 3])
    'hello'
    """

    kind = "char"

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: characters must be unique")
        self.chars = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in this tokenizer's vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def id_to_token(self, token_id: int) -> str:
        return self.chars[token_id]

    def encode_with_offsets(self, text: str) -> list[Token]:
        ids = self.encode(text)
        return [Token(i, ch, pos, pos + 1) for pos, (i, ch) in enumerate(zip(ids, text, strict=True))]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": self.chars}


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_dict()` (for example from a run's checkpoint)."""
    kind = data.get("kind")
    if kind == CharTokenizer.kind:
        return CharTokenizer(list(data["chars"]))
    raise ValueError(f"unknown tokenizer kind {kind!r}")
