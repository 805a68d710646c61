"""Chunking and the documents retrieval searches: sizes, overlap, positions, no text lost; bundled corpora and
uploads as documents (the lesson cards come from the UI: tests/ui/test_lesson_documents.py)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from engine.extract import uploads
from engine.retrieve.chunking import Document, check_knobs, chunk_documents, chunk_spans
from engine.retrieve.sources import corpus_documents, text_document


def _texts() -> list[str]:
    rng = random.Random(0)
    words = ["a", "bb", "model", "tokenizer", "the", "x" * 45, "\n\n", "loss,", "https://example.org/" + "p" * 70]
    out = ["", "   \n ", "one", "word " * 200, "y" * 500]
    for _ in range(30):
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 300))))
    return out


@pytest.mark.parametrize(("size", "overlap"), [(20, 0), (50, 10), (120, 40), (600, 100)])
def test_chunks_respect_size_keep_their_span_and_lose_no_text(size: int, overlap: int) -> None:
    for text in _texts():
        spans = chunk_spans(text, size, overlap)
        covered = set()
        for start, end, piece in spans:
            assert piece == text[start:end] and 0 < len(piece) <= size
            assert piece == piece.strip(), "a chunk neither starts nor ends with whitespace"
            covered.update(range(start, end))
        solid = {i for i, ch in enumerate(text) if not ch.isspace()}
        assert solid <= covered, "every non-blank character is in some chunk"
        starts = [s for s, _, _ in spans]
        assert starts == sorted(set(starts)), "chunks move forward"


def test_no_word_is_cut_when_words_fit() -> None:
    text = " ".join(f"w{i:03d}" for i in range(400))
    for _, _, piece in chunk_spans(text, 50, 12):
        assert all(re.fullmatch(r"w\d{3}", w) for w in piece.split())


def test_overlap_repeats_the_end_of_one_chunk_at_the_start_of_the_next() -> None:
    text = " ".join(f"w{i:03d}" for i in range(400))
    spans = chunk_spans(text, 100, 30)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        # about `overlap` characters shared: a space less when the cut lands between words, at most a word more
        assert 30 - 1 <= end - start <= 30 + 4
    assert all(b <= a for (_, a, _), (b, _, _) in zip(spans, spans[1:], strict=False))
    no_overlap = chunk_spans(text, 100, 0)
    assert all(b > a for (_, a, _), (b, _, _) in zip(no_overlap, no_overlap[1:], strict=False))
    assert len(no_overlap) < len(spans)


def test_a_word_longer_than_a_chunk_is_cut_and_kept_whole_across_chunks() -> None:
    word = "".join(chr(97 + i % 26) for i in range(95))
    spans = chunk_spans(word, 40, 10)
    assert [len(p) for _, _, p in spans] == [40, 40, 35]
    assert "".join(p[10:] if i else p for i, (_, _, p) in enumerate(spans)) == word


def test_knobs_are_checked() -> None:
    for size, overlap in [(0, 0), (100, 100), (100, -1)]:
        with pytest.raises(ValueError):
            check_knobs(size, overlap)


def test_chunk_documents_number_positions_per_document() -> None:
    docs = [Document("a", "A", "alpha beta gamma delta epsilon " * 10), Document("b", "B", "z")]
    chunks = chunk_documents(docs, 60, 10)
    a = [c for c in chunks if c.doc_id == "a"]
    assert [c.position for c in a] == list(range(len(a))) and len(a) > 2
    assert all(docs[0].text[c.start:c.end] == c.text and c.source == "A" for c in a)
    assert chunks[-1].doc_id == "b" and chunks[-1].position == 0


def test_bundled_corpus_and_upload_documents(tmp_path: Path) -> None:
    code = corpus_documents("python_stdlib")
    assert code[0].id == "python_stdlib#0" and code[0].source.endswith("Lib/bisect.py")
    text = "My notes on retrieval.\n\n" + "Chunks are embedded and stored. " * 60
    saved = uploads.save_upload("notes.txt", text, tmp_path)
    mine = corpus_documents(saved.id, tmp_path)
    assert [d.id for d in mine] == [f"{saved.id}#0", f"{saved.id}#1"] and mine[0].text == "My notes on retrieval."
    with pytest.raises(KeyError):
        corpus_documents("../secrets", tmp_path)
    assert text_document("x.txt", text) == text_document("y.txt", text).__class__(
        text_document("x.txt", text).id, "x.txt", text)
