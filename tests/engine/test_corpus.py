"""Corpora, uploads, documents, cleaning steps and duplicate removal, each on a constructed case."""

from __future__ import annotations

import doctest
import os

import pytest

from engine import corpus, dedup
from engine.corpus import (
    MAX_UPLOAD_BYTES,
    MIN_UPLOAD_CHARS,
    CleaningOptions,
    UploadRejected,
    clean,
    content_hash,
    list_corpora,
    load_corpus,
    load_documents,
    save_upload,
    split_documents,
    validate_upload,
)
from engine.dedup import deduplicate

PROSE = " ".join(load_corpus("tinyshakespeare")[:1700].split())  # one paragraph of ~1,600 characters
ONLY = CleaningOptions(nfkc=False, whitespace=False, boilerplate=False, short=False, repetitive=False)


# --- the registry -----------------------------------------------------------------------------------------------


def test_bundled_corpora_are_listed_with_their_origin():
    corpora = {c.id: c for c in list_corpora()}
    assert {"tinyshakespeare", "python_stdlib", "web_crawl"} <= set(corpora)
    shakespeare, code = corpora["tinyshakespeare"], corpora["python_stdlib"]
    assert shakespeare.kind == "prose" and code.kind == "code"
    assert 1_000_000 < shakespeare.size_bytes < 1_200_000 and 300_000 < code.size_bytes < 600_000
    readme = (corpus.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for info in (shakespeare, code):
        assert info.path.exists() and info.source and info.path.name in readme
        assert len(load_corpus(info.id).encode("utf-8")) == info.size_bytes


def test_load_corpus_and_documents():
    text = load_corpus("tinyshakespeare")
    assert text.startswith("First Citizen:\nBefore we proceed any further")
    speeches = load_documents("tinyshakespeare")
    assert speeches[0] == "First Citizen:\nBefore we proceed any further, hear me speak."
    assert len(speeches) > 7000
    modules = load_documents("python_stdlib")
    assert len(modules) == 29 and modules[0].startswith("# ==== file: Lib/bisect.py ====")
    assert len(load_documents("web_crawl")) == 5000
    with pytest.raises(KeyError, match="unknown corpus"):
        load_corpus("no-such-corpus")


def test_split_documents():
    assert split_documents("a\nb\n\n  \n\nc\n") == ["a\nb", "c"]
    assert split_documents("") == []
    text = "# header\n\n# ==== file: Lib/a.py ====\nx = 1\n\n\ny = 2\n# ==== file: Lib/b.py ====\nz = 3\n"
    assert split_documents(text, "files") == [
        "# ==== file: Lib/a.py ====\nx = 1\n\n\ny = 2",
        "# ==== file: Lib/b.py ====\nz = 3",
    ]
    with pytest.raises(ValueError):
        split_documents("x", "sentences")


def test_content_hash_is_stable_and_content_sensitive():
    assert content_hash("abc") == content_hash("abc") != content_hash("abd")
    assert len(content_hash("")) == 64


# --- uploads -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "words"),
    [
        (b"", "empty", "is empty"),
        (b"a" * (MAX_UPLOAD_BYTES + 1), "too_large", "the limit is 2 MB"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"x" * 2000, "binary", "NUL byte at byte 8"),
        (("caf\xe9 " * 400).encode("latin-1"), "not_utf8", "byte 0xE9 at position 3"),
        ("hello".encode("utf-16"), "not_utf8", "UTF-16"),
        (bytes(range(1, 32)) * 100, "binary", "non-printable"),
        (b"To be, or not to be.", "too_short", f"at least {MIN_UPLOAD_CHARS:,}"),
    ],
)
def test_refused_uploads_say_why(data, kind, words):
    with pytest.raises(UploadRejected) as info:
        validate_upload("mine.txt", data)
    assert info.value.kind == kind and kind in UploadRejected.KINDS
    assert words in info.value.reason and "mine.txt" in info.value.reason
    assert str(info.value) == info.value.reason


def test_accepted_upload_is_tidied():
    text = validate_upload("play.txt", b"\xef\xbb\xbf" + PROSE.replace(". ", ".\r\n").encode())
    assert not text.startswith("\ufeff") and "\r" not in text and text.startswith("First Citizen: Before")
    assert validate_upload("", ("naïve 🙂 " * 200).encode()) == "naïve 🙂 " * 200


def test_save_upload_lists_and_loads(tmp_path):
    info = save_upload("My Novel.txt", PROSE, tmp_path)
    assert info.kind == "upload" and info.title == "my novel" and info.path.parent == tmp_path
    assert info.size_bytes == len(PROSE.encode())
    assert load_corpus(info.id, tmp_path) == PROSE
    assert info.id in [c.id for c in list_corpora(tmp_path)]
    assert load_documents(info.id, tmp_path) == [PROSE]
    assert save_upload("My Novel.txt", PROSE, tmp_path) == info  # same text, same corpus
    assert [p.name for p in tmp_path.iterdir()] == [info.path.name]  # no temp files left behind


def test_save_upload_is_atomic(tmp_path, monkeypatch):
    first = save_upload("a.txt", PROSE, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_upload("b.txt", PROSE + " more", tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_corpus(first.id, tmp_path) == PROSE
    with pytest.raises(UploadRejected):
        save_upload("tiny.txt", "too short", tmp_path)


# --- cleaning ------------------------------------------------------------------------------------------------


def step(report, name):
    return next(s for s in report.steps if s.name == name)


def test_nfkc_step():
    docs = ["the ﬁnal act", "ＡＢＣ\u00a0plain", "already plain"]
    report = clean(docs, CleaningOptions(**{**ONLY.__dict__, "nfkc": True}))
    assert report.docs == ["the final act", "ABC plain", "already plain"]
    s = step(report, "nfkc")
    assert s.enabled and s.docs_changed == 2 and s.docs_removed == 0
    assert s.examples[0].before.startswith("the ﬁ") and s.examples[0].after.startswith("the fi")
    assert not step(report, "whitespace").enabled


def test_whitespace_step_keeps_indentation():
    docs = ["def f():\r\n    return  1   \n\n\n\n\nx\u00a0=\t2\u200b ", "tidy"]
    report = clean(docs, CleaningOptions(**{**ONLY.__dict__, "whitespace": True}))
    assert report.docs == ["def f():\n    return 1\n\nx = 2", "tidy"]
    s = step(report, "whitespace")
    assert s.docs_changed == 1 and s.chars_removed == len(docs[0]) - len(report.docs[0])


def test_boilerplate_step_removes_recurring_lines():
    pages = [f"Home | News | About\nStory {i}: something happened on day {i} of the festival.\nCookie policy | Subscribe"
             for i in range(10)]  # fmt: skip
    pages.append("Home | News | About\nCookie policy | Subscribe")  # nothing but boilerplate
    report = clean(pages, CleaningOptions(**{**ONLY.__dict__, "boilerplate": True}))
    assert report.docs[3] == "Story 3: something happened on day 3 of the festival."
    s = step(report, "boilerplate")
    assert dict(s.flagged) == {"Home | News | About": 11, "Cookie policy | Subscribe": 11}
    assert s.docs_changed == 11 and s.docs_removed == 1 and report.after.documents == 10
    # Lines that recur in too few documents are content, not boilerplate.
    assert step(clean(pages[:2], CleaningOptions()), "boilerplate").flagged == []


def test_short_step():
    docs = ["Page not found.", PROSE, "  ok  "]
    report = clean(docs, CleaningOptions(**{**ONLY.__dict__, "short": True, "min_chars": 20}))
    assert report.kept == [1] and step(report, "short").docs_removed == 2
    assert step(report, "short").examples[0].before == "Page not found."


def test_repetitive_step():
    spam = "buy cheap pills now " * 20
    report = clean(
        [spam, PROSE[:400], "best prices best prices click here " * 5],
        CleaningOptions(**{**ONLY.__dict__, "repetitive": True}),
    )
    assert report.kept == [1]
    s = step(report, "repetitive")
    assert s.docs_removed == 2 and "word 3-grams are repeats" in s.examples[0].note
    assert corpus.repetition_score(spam) > 0.9 and corpus.repetition_score(PROSE[:80]) < 0.3


def test_clean_reports_before_and_after():
    docs = [PROSE, PROSE[:30], "x y " * 50]
    report = clean(docs)
    assert report.before == corpus.corpus_stats(docs)
    assert report.after.documents == 1 and report.docs == [PROSE] and report.kept == [0]
    assert [s.name for s in report.steps] == ["nfkc", "whitespace", "boilerplate", "short", "repetitive"]


def test_shakespeare_is_mostly_kept_by_default():
    docs = load_documents("tinyshakespeare")
    report = clean(docs)
    assert step(report, "boilerplate").flagged == []  # no speaker name is on 5% of the speeches
    assert step(report, "repetitive").docs_removed == 0
    assert 0.7 < report.after.documents / report.before.documents < 0.9  # only very short speeches go


def test_code_keeps_its_lines_with_the_suggested_options():
    modules = load_documents("python_stdlib")
    web = clean(modules)
    assert "else:" in dict(step(web, "boilerplate").flagged)  # the web filter would strip code lines
    report = clean(modules, corpus.suggested_options("code"))
    assert report.after.documents == 29 and "        else:" in report.docs[0] + report.docs[-1]


# --- duplicates ----------------------------------------------------------------------------------------------

A = ("Now is the winter of our discontent made glorious summer by this sun of York; and all the clouds that "
     "lour'd upon our house in the deep bosom of the ocean buried.")  # fmt: skip
B = ("Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him. The evil that "
     "men do lives after them; the good is oft interred with their bones.")  # fmt: skip
C = "Two households, both alike in dignity, in fair Verona, where we lay our scene, from ancient grudge break."


def test_exact_duplicates_after_normalisation():
    docs = [A, B, A.upper(), "  " + A.replace(" ", "  "), A.replace("fi", "ﬁ"), C]
    report = deduplicate(docs, near=False)
    assert report.kept == [0, 1, 5] and report.exact_removed == 3 and report.near_removed == 0
    assert [(r.index, r.duplicate_of, r.kind) for r in report.removed] == [
        (2, 0, "exact"),
        (3, 0, "exact"),
        (4, 0, "exact"),
    ]
    pair = report.examples[0]
    assert (
        pair.kind == "exact"
        and pair.kept_text == A
        and pair.removed_text == A.upper()
        and pair.jaccard == 1.0
    )


def test_near_duplicates_found_and_distinct_texts_kept():
    long_a, long_b = A + " " + B, B + " " + C
    near_a = long_a.replace("glorious", "splendid")  # one word of 62 changed: Jaccard 0.85
    near_b = long_b.replace("Friends, Romans", "Friends and Romans") + " So let it be."  # Jaccard 0.87
    docs = [long_a, long_b, C, near_a, near_b]
    report = deduplicate(docs, threshold=0.7)
    assert report.kept == [0, 1, 2] and report.near_removed == 2 and report.docs_after == 3
    by_index = {r.index: r for r in report.removed}
    assert by_index[3].duplicate_of == 0 and by_index[4].duplicate_of == 1
    for pair in report.examples:
        assert pair.kind == "near" and pair.kept_text in docs and pair.removed_text in docs
        assert pair.jaccard >= 0.7 and abs(pair.estimated_similarity - pair.jaccard) < 0.15
    # A strict threshold keeps them: the knob matters.
    assert deduplicate(docs, threshold=0.95).near_removed == 0


def test_distinct_documents_are_all_kept():
    docs = load_documents("tinyshakespeare")[:2000]
    docs = [d for d in docs if len(d.split()) > 30]  # long speeches are distinct
    report = deduplicate(docs)
    assert report.docs_after == len(docs)


def test_shingles_and_jaccard():
    assert dedup.shingles("To be or not to be", k=2) == {"to be", "be or", "or not", "not to"}
    assert dedup.jaccard(dedup.shingles(A), dedup.shingles(A.upper())) == 1.0
    assert dedup.jaccard(dedup.shingles(A), dedup.shingles(B)) == 0.0
    assert len(dedup.shingles("abcdef", k=3, unit="char")) == 4


def test_docstring_examples_run():
    assert doctest.testmod(corpus).failed == 0
    assert doctest.testmod(dedup).failed == 0
