"""The learner's own BPE tokenizer: trained on their corpus in lesson 4, used again when they train a model.

`train_and_save` trains a byte-level BPE (`engine.transform.tokenization.train_bpe`) on the learner's cleaned corpus, writes
it as JSON to `<upload folder>/bpe.json` (temp file + rename, so a reader never sees half a file) and records a
`bpe.tokenizer` fact in the progress store; `learner_bpe` loads it back; `bpe_facts` gives the numbers a quiz may
ask about. Training is cached by the text's content hash and the vocabulary size, so a rerun, a second learner with
the same corpus, or the playground asking for the same size never trains twice.

The trained tokenizer is cached with `st.cache_resource`, not `st.cache_data`: cache_data hands back an unpickled
copy on every hit, too slow for a playground that re-encodes on every keystroke (docs/benchmarks.md). The
tokenizer is never modified after training, so one shared object is safe.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from engine.extract.corpus import content_hash
from engine.files import write_text
from engine.transform.tokenization import BPETokenizer, CharTokenizer, tokenizer_from_dict, train_bpe
from ui import learner_corpus, session

FACT_KEY = "bpe.tokenizer"
FILE_NAME = "bpe.json"


@dataclass(frozen=True)
class TrainedBPE:
    """A BPE trained on one text, with what it does to that text."""

    tokenizer: BPETokenizer
    chars: int  # length of the training text in characters
    tokens: int  # length of the training text in tokens
    seconds: float  # how long training took (the first time: later calls hit the cache)

    @property
    def chars_per_token(self) -> float:
        return self.chars / max(self.tokens, 1)


@dataclass(frozen=True)
class CorpusText:
    """The learner's training text and its content hash (the cache key for everything computed from it)."""

    text: str
    hash: str


def corpus_text(learner_id: int) -> CorpusText:
    """The learner's cleaned corpus, as their model will see it (`learner_corpus.training_text`)."""
    text = learner_corpus.training_text(learner_id)
    return CorpusText(text, content_hash(text))


@st.cache_resource(show_spinner="Training a BPE tokenizer on your corpus...", max_entries=12)
def _train(text_hash: str, vocab_size: int, _text: str) -> TrainedBPE:
    """Keyed by the hash (the leading underscore keeps Streamlit from hashing megabytes of text on every call)."""
    t0 = time.perf_counter()
    tok = train_bpe(_text, vocab_size)
    seconds = time.perf_counter() - t0
    return TrainedBPE(tok, len(_text), len(tok.encode(_text)) if _text else 0, seconds)


def trained(corpus: CorpusText, vocab_size: int) -> TrainedBPE:
    """A BPE of `vocab_size` trained on `corpus` (cached: the same text and size train once per server)."""
    return _train(corpus.hash, vocab_size, corpus.text)


@st.cache_data(show_spinner=False, max_entries=16)
def _chars(text_hash: str, _text: str) -> str:
    return "".join(sorted(set(_text)))


def char_tokenizer(corpus: CorpusText, extra: str = "") -> CharTokenizer:
    """A character tokenizer over the corpus's characters plus those of `extra` (text the learner typed), so
    encoding `extra` never fails on a character the corpus lacks.

    >>> char_tokenizer(CorpusText("abc", "h"), "cat 🙂").chars
    [' ', 'a', 'b', 'c', 't', '🙂']
    """
    return CharTokenizer(sorted(set(_chars(corpus.hash, corpus.text)) | set(extra)))


def corpus_chars(corpus: CorpusText) -> set[str]:
    return set(_chars(corpus.hash, corpus.text))


def tokenizer_path(learner_id: int) -> Path:
    return learner_corpus.upload_folder(learner_id) / FILE_NAME


def train_and_save(learner_id: int, vocab_size: int) -> BPETokenizer:
    """Train on the learner's corpus, save to `<upload folder>/bpe.json`, record the `bpe.tokenizer` fact."""
    corpus = corpus_text(learner_id)
    result = trained(corpus, vocab_size)
    path = tokenizer_path(learner_id)
    write_text(path, json.dumps(result.tokenizer.to_dict(), ensure_ascii=False))
    info = learner_corpus.chosen(learner_id)
    session.store().set_fact(learner_id, FACT_KEY, {
        "path": str(path),
        "vocab_size": result.tokenizer.vocab_size,
        "requested": vocab_size,
        "corpus_id": info.id,
        "corpus_title": info.title,
        "corpus_hash": corpus.hash,
        "chars_per_token": result.chars_per_token,
        "train_chars": result.chars,
        "train_tokens": result.tokens,
        "seconds": result.seconds,
        "trained_at": time.time(),
    })
    return result.tokenizer


def bpe_info(learner_id: int) -> dict[str, Any] | None:
    """The `bpe.tokenizer` fact as saved by `train_and_save`, or None if the learner has not trained one."""
    info = session.store().fact(learner_id, FACT_KEY)
    return info if isinstance(info, dict) and "path" in info else None


@st.cache_resource(show_spinner=False, max_entries=32)
def _load(path: str, mtime_ns: int, size: int) -> BPETokenizer:
    """Keyed by the file's mtime and size too, so retraining (a new file) is picked up."""
    tok = tokenizer_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    if not isinstance(tok, BPETokenizer):
        raise ValueError(f"{path} holds a {tok.kind} tokenizer, not a BPE")
    return tok


def learner_bpe(learner_id: int) -> BPETokenizer | None:
    """The learner's saved BPE, or None if they have not trained one or its file is gone or unreadable."""
    info = bpe_info(learner_id)
    if info is None:
        return None
    try:
        stat = Path(info["path"]).stat()
        return _load(str(info["path"]), stat.st_mtime_ns, stat.st_size)
    except Exception:  # missing file, bad JSON, or a tokenizer.json `tokenizers` rejects (it raises bare Exception)
        return None


def bpe_facts(learner_id: int) -> dict[str, float]:
    """{"bpe.vocab_size": ..., "bpe.chars_per_token": ...} once the learner has trained a tokenizer, else {}."""
    info = bpe_info(learner_id)
    if info is None:
        return {}
    try:
        return {"bpe.vocab_size": float(info["vocab_size"]), "bpe.chars_per_token": float(info["chars_per_token"])}
    except (KeyError, TypeError, ValueError):
        return {}
