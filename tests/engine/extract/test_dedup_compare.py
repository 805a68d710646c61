"""The with/without-duplicates experiment: equal lengths, identical held-out validation text, no leaks."""

import pytest

from engine.extract.dedup import comparison_texts, deduplicate
from engine.transform.data import TextDataset
from engine.transform.tokenization import CharTokenizer


def _docs():
    originals = [f"original page {i}: " + " ".join(f"w{i}x{j}" for j in range(30)) for i in range(200)]
    return originals + originals[:80]  # 80 exact copies appended


def test_equal_length_and_shared_validation():
    docs = _docs()
    t = comparison_texts(docs, deduplicate(docs, near=False), max_val_chars=3000)
    assert len(t.with_duplicates) == len(t.without_duplicates) == t.train_chars + t.val_chars
    assert t.with_duplicates[-t.val_chars:] == t.without_duplicates[-t.val_chars:]
    assert 0.1 < t.duplicate_share < 0.5
    # the trainer's positional split puts exactly the shared text in validation
    tok = CharTokenizer.from_text(t.with_duplicates + t.without_duplicates)
    a, b = TextDataset(t.with_duplicates, tok), TextDataset(t.without_duplicates, tok)
    assert abs(len(a.val) - t.val_chars) <= 1 and a.val.tolist()[-100:] == b.val.tolist()[-100:]


def test_no_validation_document_or_its_copy_is_trained_on():
    docs = _docs()
    t = comparison_texts(docs, deduplicate(docs, near=False), max_val_chars=3000)
    val_docs = [d for d in t.with_duplicates[-t.val_chars:].split("\n\n") if d]
    train_with, train_without = t.with_duplicates[: t.train_chars], t.without_duplicates[: t.train_chars]
    for d in val_docs:
        assert d not in train_with and d not in train_without
    # and the unique text has no repeated document
    unique_part = [d for d in train_without.split("\n\n")[:-1] if d]
    assert len(unique_part) == len(set(unique_part))


def test_too_small_corpus_is_refused_plainly():
    docs = ["tiny one", "tiny two"]
    with pytest.raises(ValueError, match="too small"):
        comparison_texts(docs * 3, deduplicate(docs * 3, near=False))
