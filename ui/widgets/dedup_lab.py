"""Find duplicates in the cleaned corpus: exact copies by hash, near copies by MinHash at a threshold you set.

On the generated web crawl every page carries a hidden label (original, exact copy, near copy, mirror, ...), so
the lab can also say what the filter really removed: how many planted copies it caught and whether it removed
any originals.
"""

from __future__ import annotations

import difflib
from collections import Counter

import streamlit as st

from course.widgets import DedupLabParams
from engine.extract import crawl
from engine.extract.corpus import CRAWL_ID
from engine.extract.dedup import DedupReport
from ui import learner_corpus, session
from ui.text import escape_md

RESULT_KEY = "dedup.result"
LABEL_NAMES = {"original": "original pages", "exact_dup": "exact copies", "near_dup": "near copies (edited)",
               "mirror": "mirrors (same text, other site)", "boilerplate": "boilerplate-heavy pages",
               "short": "very short pages", "spam": "spam pages"}


def removed_by_label(report: DedupReport, kept_after_cleaning: list[int]) -> Counter[str]:
    """For the crawl sample: what the removed documents really were (by the crawl's hidden labels)."""
    labels = [doc.label for doc in crawl.make_crawl()]
    return Counter(labels[kept_after_cleaning[r.index]] for r in report.removed)


def word_changes(kept: str, removed: str, limit: int = 4) -> str:
    """'a b c' vs 'a x c' -> '“b” → “x”': the edits that make a near copy, in words a learner can spot."""
    a, b = kept.split(), removed.split()
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        changes.append(f"“{old}” → “{new}”" if old and new else (f"+ “{new}”" if new else f"− “{old}”"))
    if not changes:
        return "Same words; only spacing, case or punctuation differ."
    more = f" and {len(changes) - limit} more" if len(changes) > limit else ""
    return "What changed: " + "; ".join(changes[:limit]) + more


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.extract.dedup:deduplicate", "engine.extract.dedup:minhashes", "engine.extract.dedup:jaccard")


def render(params: DedupLabParams, key: str) -> bool:
    me = session.learner()
    info = learner_corpus.chosen(me.id)
    options = learner_corpus.cleaning_options(me.id, info)
    st.caption(f"Looking for duplicates in **{info.title}**, after your cleaning steps.")
    left, mid, right = st.columns([2, 1, 1], vertical_alignment="center")
    threshold = left.slider("Near-duplicate threshold (Jaccard similarity of 5-word shingles)", params.min_threshold,
                            params.max_threshold, params.threshold, step=0.05, key=f"{key}-threshold",
                            help="Two documents sharing at least this share of their 5-word phrases count as copies.")
    exact = mid.toggle("Exact copies", value=True, key=f"{key}-exact")
    near = right.toggle("Near copies", value=True, key=f"{key}-near")
    cleaning = learner_corpus.cleaned(me.id, info, options)
    report = learner_corpus.deduped(me.id, info, options, threshold, exact, near)
    result = {"corpus": info.id, "threshold": threshold, "exact": report.exact_removed, "near": report.near_removed,
              "removed": report.exact_removed + report.near_removed, "documents": report.docs_before}
    if session.store().fact(me.id, RESULT_KEY) != result:
        session.store().set_fact(me.id, RESULT_KEY, result)  # what the quiz asks about: the learner's own numbers

    a, b, c, d = st.columns(4)
    a.metric("Documents in", f"{report.docs_before:,}")
    b.metric("Exact copies removed", f"{report.exact_removed:,}")
    c.metric("Near copies removed", f"{report.near_removed:,}")
    d.metric("Documents kept", f"{report.docs_after:,}")

    if info.id == CRAWL_ID and report.removed:
        found = removed_by_label(report, cleaning.kept)
        st.markdown("**What the filter really removed** (the crawl sample knows which pages it planted as copies):")
        st.dataframe([{"removed documents that were…": LABEL_NAMES.get(label, label), "count": n}
                      for label, n in found.most_common()], hide_index=True, width="stretch")
        if found.get("original"):
            st.warning(f"{found['original']} original page(s) were removed too: at this threshold the filter starts "
                       "to treat merely similar pages as copies.", icon=":material/warning:")

    pairs = [p for p in report.examples if p.kind == "near"][: params.max_pairs] or report.examples[: params.max_pairs]
    if pairs:
        st.markdown("**Pairs it found, side by side** (the first copy is kept):")
        for pair in pairs:
            with st.container(border=True):
                st.caption(f"{pair.kind} duplicate · MinHash estimate {pair.estimated_similarity:.2f} · "
                           f"exact Jaccard {pair.jaccard:.2f}")
                st.markdown(escape_md(word_changes(pair.kept_text, pair.removed_text)))
                left, right = st.columns(2)
                left.code(pair.kept_text[:500], language=None, wrap_lines=True)
                right.code(pair.removed_text[:500], language=None, wrap_lines=True)
    elif not report.removed:
        st.info("No duplicates at this threshold. Try lowering it, or pick the web-crawl sample.")
    return True
