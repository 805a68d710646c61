"""The synthetic web crawl: deterministic, the promised composition, and labels that cleaning and dedup agree with."""

from __future__ import annotations

import pytest

from engine.extract import crawl
from engine.extract.cleaning import CleaningOptions, clean
from engine.extract.crawl import COMPOSITION, DEFAULT_N_DOCS, LABELS, crawl_composition, make_crawl
from engine.extract.dedup import deduplicate, jaccard, normalize_for_hash, shingles


@pytest.fixture(scope="module")
def docs() -> list[crawl.CrawlDoc]:
    return make_crawl()


@pytest.fixture(scope="module")
def raw_dedup(docs):
    return deduplicate([d.text for d in docs])


@pytest.fixture(scope="module")
def cleaned(docs):
    return clean([d.text for d in docs])


def share(doc_ids: set[int], docs, label: str) -> float:
    """Share of the pages with `label` whose id is in doc_ids."""
    with_label = [d for d in docs if d.label == label]
    return sum(d.id in doc_ids for d in with_label) / len(with_label)


def test_deterministic_from_seed(docs):
    assert make_crawl() == docs
    assert crawl._make_crawl.__wrapped__(DEFAULT_N_DOCS, crawl.DEFAULT_SEED) == tuple(
        docs
    )  # not just the cache
    other = make_crawl(seed=1)
    assert [d.text for d in other] != [d.text for d in docs]
    assert crawl_composition(other) == crawl_composition(docs)


def test_composition(docs):
    assert len(docs) == DEFAULT_N_DOCS >= 5000
    counts = crawl_composition(docs)
    assert list(counts) == list(LABELS)
    for label, frac in COMPOSITION.items():
        assert counts[label] == round(frac * DEFAULT_N_DOCS)
    assert counts["original"] == DEFAULT_N_DOCS - sum(round(f * DEFAULT_N_DOCS) for f in COMPOSITION.values())
    assert [d.id for d in docs] == list(range(len(docs)))
    assert len({d.url for d in docs}) == len(docs)
    flagged = sum(bool(d.flags) for d in docs)
    assert 0.08 < flagged / len(docs) < 0.18  # about one page in eight has Unicode or whitespace mess
    assert any("ﬁ" in d.text for d in docs) and any("\r\n" in d.text for d in docs)
    assert any("Reading the source of" in d.text for d in docs)  # some pages come from the code corpus


def test_copies_point_at_an_earlier_original(docs):
    for d in docs:
        if d.label in ("exact_dup", "near_dup", "mirror"):
            src = docs[d.source_id]
            assert src.label == "original" and src.id < d.id
        else:
            assert d.source_id is None
        if d.label == "exact_dup":
            assert normalize_for_hash(d.text) == normalize_for_hash(docs[d.source_id].text)
    near = [d for d in docs if d.label == "near_dup"][:100]
    for d in near:
        assert d.text != docs[d.source_id].text
        assert jaccard(shingles(d.text), shingles(docs[d.source_id].text)) > 0.75


def test_originals_are_distinct(docs):
    originals = [normalize_for_hash(d.text) for d in docs if d.label == "original"]
    assert len(set(originals)) == len(originals)


def test_exact_dedup_finds_every_exact_copy(docs, raw_dedup):
    exact = {r.index for r in raw_dedup.removed if r.kind == "exact"}
    assert share(exact, docs, "exact_dup") == 1.0
    assert share(exact, docs, "original") == 0.0
    for r in raw_dedup.removed:
        if docs[r.index].label == "exact_dup" and r.kind == "exact":
            assert r.duplicate_of == docs[r.index].source_id


def test_near_dedup_finds_near_copies_and_keeps_originals(docs, raw_dedup):
    near = {r.index for r in raw_dedup.removed if r.kind == "near"}
    assert share(near, docs, "near_dup") >= 0.95
    assert share(near, docs, "original") == 0.0
    assert share(near, docs, "mirror") < 0.1  # a different site template hides a mirror from near dedup...
    assert raw_dedup.docs_after == raw_dedup.docs_before - len(raw_dedup.removed)
    assert {p.kind for p in raw_dedup.examples} == {"exact", "near"}


def test_cleaning_removes_junk_pages_and_keeps_originals(docs, cleaned):
    kept = set(cleaned.kept)
    for label in ("boilerplate", "short", "spam"):
        assert share(kept, docs, label) == 0.0, label
    assert share(kept, docs, "original") > 0.995  # a code passage or two may look repetitive
    steps = {s.name: s for s in cleaned.steps}
    flagged = dict(steps["boilerplate"].flagged)
    assert "Cookie policy | Subscribe" in flagged and "Skip to main content" in flagged
    assert steps["nfkc"].docs_changed > 300 and steps["whitespace"].docs_changed > 300
    assert steps["repetitive"].docs_removed >= COMPOSITION["spam"] * DEFAULT_N_DOCS


def test_mirrors_become_exact_copies_once_boilerplate_is_gone(docs, cleaned):
    after = deduplicate(cleaned.docs, near=False)
    exact = {cleaned.kept[r.index] for r in after.removed}
    assert share(exact, docs, "mirror") == 1.0  # ...but cleaning first reveals it
    assert share(exact, docs, "original") == 0.0


def test_small_crawls_and_limits():
    small = make_crawl(100, seed=3)
    assert len(small) == 100 and crawl_composition(small)["spam"] == 8
    with pytest.raises(ValueError):
        make_crawl(10)
    assert CleaningOptions().boilerplate  # the default cleaning removes templates
