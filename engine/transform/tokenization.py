"""Tokenizers behind one small interface, so the trainer and the UI never care which one they hold.

`CharTokenizer`: one token per Unicode character, as nanoGPT's shakespeare_char. `BPETokenizer`: byte-level BPE
(Sennrich et al. 2016; byte-level as in GPT-2, Radford et al. 2019) trained with Hugging Face `tokenizers`
(`train_bpe`). Each encodes with offsets, decodes, lists its vocabulary and round-trips through a JSON-able dict
(a run's checkpoint carries it). Offsets tile the original string; a character split over several BPE tokens (an
emoji's 4 bytes) belongs to the token with its last byte, the others get an empty span, all marked `partial`, and
`token_chips` groups them into one chip, which is what the UI draws. `compression_table` measures characters per
token at several vocabulary sizes. The step-through of BPE training is `bpe_trace`; the byte alphabet `byte_level`.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from engine.transform.byte_level import bytes_to_unicode, readable

# The most distinct characters a character tokenizer may be built from. The model's embedding and output layer
# get one row per token, and a text with thousands of characters (Chinese, say) sees most of them only a few
# times, too seldom to learn; 512 covers any alphabetic script plus punctuation, digits and emoji, far more than
# the bundled corpora use. Uploads above it are refused (`engine.extract.uploads`).
MAX_CHAR_VOCAB = 512


@dataclass(frozen=True)
class Token:
    """One token as the UI draws it: its id, its text, and where it sits in the original string."""

    id: int
    text: str  # the original text it covers, text[start:end] ("" for a leading piece of a split character)
    start: int  # offset of the first character in the original text
    end: int  # offset one past the last character
    raw: str = ""  # the token as the vocabulary spells it (BPE: readable bytes, e.g. "<0xF0><0x9F>")
    partial: bool = False  # holds only some of the bytes of a character (byte-level BPE)


@dataclass(frozen=True)
class TokenChip:
    """What the UI colours: whole characters of the text and the token ids that spell them (usually one)."""

    text: str
    start: int
    end: int
    ids: tuple[int, ...]
    pieces: tuple[str, ...]  # each id's token as the vocabulary spells it


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

    def token_chips(self, text: str) -> list[TokenChip]:
        """Tokens as chips over whole characters, for the UI to colour (one chip per token unless a
        tokenizer splits characters, see BPETokenizer).

        >>> [c.text for c in CharTokenizer.from_text("abc").token_chips("cab")]
        ['c', 'a', 'b']
        """
        return [
            TokenChip(t.text, t.start, t.end, (t.id,), (t.raw or t.text,))
            for t in self.encode_with_offsets(text)
        ]


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
        """The tokenizer a model trains with: every character of `text`, at most `MAX_CHAR_VOCAB` of them.

        >>> CharTokenizer.from_text("".join(map(chr, range(0x4E00, 0x4E00 + 600)))).vocab_size
        Traceback (most recent call last):
        ...
        ValueError: this text uses 600 different characters; a character-level model allows at most 512 (one output per character, and rare ones are seen too seldom to learn)
        """
        chars = sorted(set(text))
        if len(chars) > MAX_CHAR_VOCAB:
            raise ValueError(
                f"this text uses {len(chars):,} different characters; a character-level model allows at most "
                f"{MAX_CHAR_VOCAB} (one output per character, and rare ones are seen too seldom to learn)"
            )
        return cls(chars)

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


# --- byte-level BPE -------------------------------------------------------------------------------------------


class BPETokenizer(Tokenizer):
    """Byte-level BPE: a wrapper around a trained Hugging Face `tokenizers.Tokenizer` (BPE model, ByteLevel
    pre-tokenizer and decoder). Any string encodes, since every byte is in the vocabulary.

    Differs from CharTokenizer in that a token is a run of UTF-8 bytes, not a character: "the" may be one token,
    and an emoji may be several. `encode_with_offsets` still tiles the original string (see the module doc).

    >>> tok = train_bpe("low lower lowest " * 50, vocab_size=262)
    >>> tok.vocab_size, [t.text for t in tok.encode_with_offsets("lowest")]
    (262, ['low', 'e', 'st'])
    >>> tok.decode(tok.encode("slower 🙂")) == "slower 🙂"
    True
    """

    kind = "bpe"

    def __init__(self, hf_tokenizer: Any, requested_vocab_size: int | None = None):
        self.hf = hf_tokenizer
        self.requested_vocab_size = requested_vocab_size
        byte_of = {ch: b for b, ch in bytes_to_unicode().items()}
        size = hf_tokenizer.get_vocab_size()
        self._raw = [hf_tokenizer.id_to_token(i) for i in range(size)]
        self._bytes = [bytes(byte_of[ch] for ch in raw) for raw in self._raw]
        self._readable = [readable(b) for b in self._bytes]

    @property
    def vocab_size(self) -> int:
        return len(self._raw)

    def encode(self, text: str) -> list[int]:
        if len(text) < 100_000:
            return self.hf.encode(text).ids
        # A long text is cut where the cut changes no pre-token, and the pieces are encoded in parallel.
        return [i for enc in self.hf.encode_batch(safe_chunks(text)) for i in enc.ids]

    def decode(self, ids: list[int]) -> str:
        """Join the tokens' bytes and decode; a cut-off character comes out as U+FFFD."""
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")

    def id_to_token(self, token_id: int) -> str:
        """The token as readable text: " the", or "<0xF0><0x9F>" for part of a character."""
        return self._readable[token_id]

    def raw_token(self, token_id: int) -> str:
        """The token as the vocabulary file spells it, GPT-2 style: "Ġthe"."""
        return self._raw[token_id]

    def vocab(self) -> dict[str, int]:
        """Token -> id as the vocabulary file spells tokens ("Ġthe"): unlike readable forms, always unique."""
        return {raw: i for i, raw in enumerate(self._raw)}

    def _layout(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[bool]]:
        """ids, each token's (start, end) in characters, and whether its byte end is a character boundary."""
        ids = self.encode(text)
        byte_ends = list(accumulate(len(self._bytes[i]) for i in ids))
        if text.isascii():  # one byte per character: byte offsets are character offsets
            char_ends = byte_ends
            aligned = [True] * len(ids)
        else:
            char_byte_ends = list(accumulate(len(ch.encode("utf-8")) for ch in text))
            char_ends = [bisect_right(char_byte_ends, b) for b in byte_ends]
            boundaries = set(char_byte_ends)
            aligned = [b in boundaries for b in byte_ends]
        spans = list(zip([0, *char_ends][:-1], char_ends, strict=True))
        return ids, spans, aligned

    def encode_with_offsets(self, text: str) -> list[Token]:
        """One Token per id; spans tile the text (a split character belongs to the token with its last byte).

        >>> tok = train_bpe("ab " * 20, vocab_size=258)
        >>> [(t.text, t.start, t.end, t.partial) for t in tok.encode_with_offsets("é")]
        [('', 0, 0, True), ('é', 0, 1, True)]
        """
        ids, spans, aligned = self._layout(text)
        tokens = []
        for k, (i, (start, end)) in enumerate(zip(ids, spans, strict=True)):
            partial = not aligned[k] or (k > 0 and not aligned[k - 1])
            tokens.append(Token(i, text[start:end], start, end, self._readable[i], partial))
        return tokens

    def token_chips(self, text: str) -> list[TokenChip]:
        """Chips over whole characters: tokens that share a character (an emoji's 4 bytes) make one chip.

        >>> tok = train_bpe("ab " * 20, vocab_size=258)
        >>> [(c.text, len(c.ids)) for c in tok.token_chips("ab é")]
        [('ab', 1), (' ', 1), ('é', 2)]
        """
        ids, spans, aligned = self._layout(text)
        chips, first = [], 0
        for k in range(len(ids)):
            if aligned[k]:
                start, end = spans[first][0], spans[k][1]
                group = ids[first : k + 1]
                chips.append(
                    TokenChip(
                        text[start:end], start, end, tuple(group), tuple(self._readable[i] for i in group)
                    )
                )
                first = k + 1
        return chips

    def to_dict(self) -> dict[str, Any]:
        """{"kind": "bpe", "tokenizer": <the Hugging Face tokenizer.json as a dict>, "requested_vocab_size": n}."""
        return {
            "kind": self.kind,
            "tokenizer": json.loads(self.hf.to_str()),
            "requested_vocab_size": self.requested_vocab_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(json.dumps(data["tokenizer"])), data.get("requested_vocab_size"))


_SAFE_CUT = re.compile(r"(?<=\S\n)(?=\n\S)")


def safe_chunks(text: str) -> list[str]:
    """Cut a text at its blank lines, between the two newlines of a "\\n\\n" that has non-space on both
    sides: GPT-2's pre-tokenizer splits such a run into "\\n", "\\n" anyway, so the pieces pre-tokenize
    exactly as the whole does and can be trained on or encoded in parallel.

    >>> safe_chunks("To be.\\n\\nOr not.\\n\\n\\nThat is")
    ['To be.\\n', '\\nOr not.\\n\\n\\nThat is']
    """
    return _SAFE_CUT.split(text)


def train_bpe(text: str, vocab_size: int, min_frequency: int = 0) -> BPETokenizer:
    """Train a byte-level BPE on `text` with Hugging Face `tokenizers`: 256 byte tokens, then merges until the
    vocabulary has `vocab_size` tokens.

    Edge case: when the text runs out of pairs to merge (it is short or very repetitive) training stops early
    and the vocabulary is smaller than asked; `requested_vocab_size` keeps what was asked.

    >>> train_bpe("hello world", vocab_size=1000).vocab_size  # only 9 merges are possible in "hello world"
    265
    """
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 256:
        raise ValueError(
            f"a byte-level BPE starts from 256 byte tokens; vocab_size={vocab_size} is too small"
        )
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    hf.train_from_iterator(safe_chunks(text), trainer=trainer)  # same merges as [text], in parallel
    return BPETokenizer(hf, requested_vocab_size=vocab_size)


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_dict()` (for example from a run's checkpoint)."""
    kind = data.get("kind")
    if kind == CharTokenizer.kind:
        return CharTokenizer(list(data["chars"]))
    if kind == BPETokenizer.kind:
        return BPETokenizer.from_dict(data)
    raise ValueError(f"unknown tokenizer kind {kind!r}")


# --- compression ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompressionRow:
    tokenizer: str  # "char" or "bpe"
    vocab_size: int  # as trained (may be below the request for a short text, see train_bpe)
    requested_vocab_size: int | None
    tokens: int  # the text's length in tokens (the sequence length a model would see)
    chars_per_token: float
    bytes_per_token: float


def compression_table(
    text: str, vocab_sizes: list[int], train_text: str | None = None
) -> list[CompressionRow]:
    """How long `text` is in tokens with a character tokenizer (first row) and byte-level BPEs of several
    vocabulary sizes, each trained on `train_text` (default: the text itself).

    >>> rows = compression_table("the cat sat on the mat " * 40, [256, 270])
    >>> [(r.tokenizer, r.vocab_size, r.tokens) for r in rows]
    [('char', 10, 920), ('bpe', 256, 920), ('bpe', 268, 241)]
    """
    train_text = text if train_text is None else train_text
    n_bytes = len(text.encode("utf-8"))

    def row(kind: str, tok: Tokenizer, requested: int | None) -> CompressionRow:
        n = len(tok.encode(text))
        return CompressionRow(kind, tok.vocab_size, requested, n, len(text) / max(n, 1), n_bytes / max(n, 1))

    chars = CharTokenizer(sorted(set(train_text + text)))  # a measurement, not a model: no vocabulary cap
    rows = [row("char", chars, None)]
    rows += [row("bpe", train_bpe(train_text, v), v) for v in sorted(vocab_sizes)]
    return rows
