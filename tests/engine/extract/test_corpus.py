"""The corpus registry (one namespace read from data/corpora.yaml), ids that never become a path outside data/,
and duplicate removal, each on a constructed case."""

from __future__ import annotations

import pytest

from course import widget_params as course_widgets
from engine.extract import bundled, corpus, crawl, dedup
from engine.extract.corpus import (
    content_hash,
    get_corpus,
    list_corpora,
    load_corpus,
    load_documents,
    split_documents,
)
from engine.extract.dedup import deduplicate

# --- the registry -----------------------------------------------------------------------------------------------


def test_bundled_corpora_are_listed_with_their_origin():
    corpora = {c.id: c for c in list_corpora()}
    assert {"tinyshakespeare", "python_stdlib", "web_crawl"} <= set(corpora)
    shakespeare, code = corpora["tinyshakespeare"], corpora["python_stdlib"]
    assert shakespeare.kind == "prose" and code.kind == "code"
    assert 1_000_000 < shakespeare.size_bytes < 1_200_000 and 300_000 < code.size_bytes < 600_000
    readme = (bundled.DATA_DIR / "README.md").read_text(encoding="utf-8")
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


def test_the_engine_and_the_validator_list_the_same_ids():
    ids = [c.id for c in list_corpora()]
    assert ids == [e.id for e in bundled.manifest()] == list(course_widgets.corpus_ids())
    assert ids == ["tinyshakespeare", "python_stdlib", "web_crawl"]


def test_every_id_a_lesson_may_name_loads():
    """What course.widgets accepts for a widget's `corpus` is what ui.learner_corpus.bundled_text loads."""
    for corpus_id in course_widgets.corpus_ids():
        assert len(load_corpus(corpus_id)) > 100_000
        assert len(load_documents(corpus_id)) > 20


def test_the_generated_crawl_is_described_by_its_real_numbers():
    web = get_corpus(corpus.CRAWL_ID)
    assert web.path is None and web.kind == "web" and web.split == "crawl"
    assert f"{crawl.DEFAULT_N_DOCS:,} synthetic" in web.description and f"seed {crawl.DEFAULT_SEED}" in web.source
    assert [e.id for e in bundled.manifest() if e.file is None] == [corpus.CRAWL_ID]
    with pytest.raises(ValueError, match="generated"):
        bundled.read_text(corpus.CRAWL_ID)


@pytest.mark.parametrize(
    "bad_id",
    ["../README", "../data/tinyshakespeare", "/etc/passwd", "python_stdlib_sample", "python_stdlib_LICENSE",
     "tinyshakespeare.txt", "tinyshakespeare/../tinyshakespeare", "", "TINYSHAKESPEARE"],
)
def test_ids_outside_the_manifest_never_reach_a_file(bad_id):
    for load in (load_corpus, load_documents, get_corpus, bundled.read_text):
        with pytest.raises(KeyError, match="unknown corpus"):
            load(bad_id)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("{id: x, title: X, description: d, file: ../secret.txt, kind: prose, split: paragraphs, source: s}",
         "plain file name"),
        ("{id: x, title: X, description: d, file: /etc/passwd, kind: prose, split: paragraphs, source: s}",
         "plain file name"),
        ("{id: x, title: X, description: d, file: .hidden, kind: prose, split: paragraphs, source: s}",
         "plain file name"),
        ("{id: x, title: X, description: d, file: '', kind: prose, split: paragraphs, source: s}", "plain file name"),
        ("{id: ../x, title: X, description: d, file: x.txt, kind: prose, split: paragraphs, source: s}",
         "field 'id': must be 1-40 lowercase"),
        ("{id: x, title: X, description: d, kind: prose, split: paragraphs, source: s}", "either `file`"),
        ("{id: x, title: X, description: d, file: x.txt, kind: poem, split: paragraphs, source: s}",
         "field 'kind': must be one of prose, code, web"),
        ("{id: x, title: X, description: d, file: x.txt, kind: prose, split: paragraphs, source: s, url: u}",
         "field 'url': unknown field"),
        ("{id: x, description: d, file: x.txt, kind: prose, split: paragraphs, source: s}", "field 'title': missing"),
        ("{id: x, title: X, description: d, file: x.txt, kind: prose, split: paragraphs, source: ' '}",
         "field 'source': must say where"),
    ],
)
def test_a_manifest_entry_cannot_point_outside_data(entry, why):
    with pytest.raises(ValueError, match=why):
        bundled.parse_manifest(f"- {entry}")


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
