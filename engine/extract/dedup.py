"""Duplicate removal: exact duplicates by hash, near duplicates by MinHash + LSH over shingles.

A crawl holds the same page many times: byte-identical copies (found by hashing a normalised form of each
document) and copies with small edits, which no hash catches. For those, each document becomes a set of word
k-gram *shingles*, and two are near duplicates when the Jaccard similarity of their sets reaches a threshold.
MinHash (Broder 1997) estimates Jaccard from `num_perm` numbers per document and LSH banding (Indyk & Motwani
1998; Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets", ch. 3) compares only likely pairs, not every
pair; both come from `datasketch`. Documents are compared in order with those kept so far, so the first copy is
kept. GPT-3 (Brown et al. 2020) and The Pile did fuzzy dedup this way; Lee et al. 2022 ("Deduplicating Training
Data Makes Language Models Better") show why it matters.

>>> report = deduplicate(["To be, or not to be", "to  be, or NOT to be", "A horse! a horse!"])
>>> report.kept, report.exact_removed
([0, 2], 1)
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

DEFAULT_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE = 5  # words per shingle
LSH_SLACK = 0.1  # the LSH index looks for pairs down to threshold - LSH_SLACK, to miss fewer of them


@dataclass(frozen=True)
class Removal:
    """One dropped document: `duplicate_of` is the index of the kept document it repeats."""

    index: int
    duplicate_of: int
    kind: str  # "exact" | "near"
    similarity: float  # MinHash estimate of Jaccard (1.0 for exact duplicates)


@dataclass(frozen=True)
class DuplicatePair:
    """A removed document beside the kept one it duplicates, for the side-by-side view."""

    kept_index: int
    removed_index: int
    kept_text: str
    removed_text: str
    kind: str  # "exact" | "near"
    estimated_similarity: float  # from MinHash
    jaccard: float  # computed exactly over the two shingle sets


@dataclass(frozen=True)
class DedupReport:
    docs_before: int
    docs_after: int
    exact_removed: int
    near_removed: int
    kept: list[int]  # indices of the documents kept, in input order
    docs: list[str]  # the kept documents
    removed: list[Removal]  # every dropped document, in input order
    examples: list[DuplicatePair] = field(default_factory=list)  # a few of each kind
    threshold: float = DEFAULT_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    shingle_size: int = DEFAULT_SHINGLE
    shingle_unit: str = "word"


def normalize_for_hash(text: str) -> str:
    """The form two documents must share to count as exact duplicates: NFKC, case-folded, whitespace collapsed.

    >>> normalize_for_hash("  To ﬁght,\\r\\n  OR\\u00a0not ")
    'to fight, or not'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_hash(text: str) -> str:
    """SHA-256 of the normalised text.

    >>> exact_hash("Hello  world") == exact_hash("hello world")
    True
    """
    return hashlib.sha256(normalize_for_hash(text).encode("utf-8")).hexdigest()


def shingles(text: str, k: int = DEFAULT_SHINGLE, unit: str = "word") -> set[str]:
    """The set of overlapping k-grams of the normalised text, of words (unit="word") or characters
    (unit="char"); a text shorter than k gives one shingle, itself.

    >>> sorted(shingles("a rose is a rose", k=3))
    ['a rose is', 'is a rose', 'rose is a']
    >>> sorted(shingles("Rosé", k=3, unit="char"))
    ['osé', 'ros']
    >>> shingles("Hi!", k=3)
    {'hi!'}
    """
    norm = normalize_for_hash(text)
    if unit == "char":
        return {norm[i : i + k] for i in range(len(norm) - k + 1)} if len(norm) > k else {norm}
    if unit != "word":
        raise ValueError(f"unknown shingle unit {unit!r}: use 'word' or 'char'")
    words = norm.split()
    if len(words) <= k:
        return {" ".join(words)}
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """|A ∩ B| / |A ∪ B| (1.0 for two empty sets).

    >>> jaccard({"a", "b", "c"}, {"b", "c", "d"})
    0.5
    """
    return len(a & b) / len(a | b) if a or b else 1.0


def minhashes(
    docs: list[str],
    k: int = DEFAULT_SHINGLE,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = 1,
    unit: str = "word",
) -> list[MinHash]:
    """One datasketch MinHash per document (built in bulk: the permutations are initialised once)."""
    sets = [[s.encode("utf-8") for s in shingles(d, k, unit)] for d in docs]
    return MinHash.bulk(sets, num_perm=num_perm, seed=seed)


def deduplicate(
    docs: list[str],
    exact: bool = True,
    near: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    shingle_size: int = DEFAULT_SHINGLE,
    shingle_unit: str = "word",
    max_examples: int = 5,
    seed: int = 1,
) -> DedupReport:
    """Drop exact duplicates (by hash of the normalised text), then near duplicates (MinHash LSH, Jaccard of
    word shingles >= threshold), keeping the first copy of each. Deterministic for a given seed.

    >>> a = "the quick brown fox jumps over the lazy dog and then it runs far away into the dark green woods"
    >>> b = a.replace("lazy", "sleepy")  # 5 of its 16 word 5-grams change: Jaccard 11/21
    >>> r = deduplicate([a, b, "something else entirely, with words that share nothing"], threshold=0.5)
    >>> r.kept, r.near_removed, r.examples[0].kind, round(r.examples[0].jaccard, 2)
    ([0, 2], 1, 'near', 0.52)
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold is a Jaccard similarity in (0, 1]")
    removed: dict[int, Removal] = {}
    if exact:
        first: dict[str, int] = {}
        for i, doc in enumerate(docs):
            h = exact_hash(doc)
            if h in first:
                removed[i] = Removal(i, first[h], "exact", 1.0)
            else:
                first[h] = i
    if near:
        survivors = [i for i in range(len(docs)) if i not in removed]
        hashes = dict(
            zip(
                survivors,
                minhashes([docs[i] for i in survivors], shingle_size, num_perm, seed, shingle_unit),
                strict=True,
            )
        )
        # The index's banding is tuned a little below the threshold, so it misses fewer truly similar pairs
        # (false negatives); each candidate it returns is then checked against the threshold itself.
        lsh = MinHashLSH(threshold=max(0.05, threshold - LSH_SLACK), num_perm=num_perm)
        for i in survivors:
            m = hashes[i]
            best, best_sim = -1, -1.0
            for j in lsh.query(m):
                sim = m.jaccard(hashes[j])
                if sim >= threshold and (sim > best_sim or (sim == best_sim and j < best)):
                    best, best_sim = j, sim
            if best >= 0:
                removed[i] = Removal(i, best, "near", best_sim)
            else:
                lsh.insert(i, m)
    kept = [i for i in range(len(docs)) if i not in removed]
    ordered = [removed[i] for i in sorted(removed)]
    examples = []
    for kind in ("exact", "near"):
        for r in [r for r in ordered if r.kind == kind][:max_examples]:
            a, b = docs[r.duplicate_of], docs[r.index]
            exact_j = jaccard(
                shingles(a, shingle_size, shingle_unit), shingles(b, shingle_size, shingle_unit)
            )
            examples.append(DuplicatePair(r.duplicate_of, r.index, a, b, kind, r.similarity, exact_j))
    return DedupReport(
        docs_before=len(docs),
        docs_after=len(kept),
        exact_removed=sum(r.kind == "exact" for r in ordered),
        near_removed=sum(r.kind == "near" for r in ordered),
        kept=kept,
        docs=[docs[i] for i in kept],
        removed=ordered,
        examples=examples,
        threshold=threshold,
        num_perm=num_perm,
        shingle_size=shingle_size,
        shingle_unit=shingle_unit,
    )


@dataclass(frozen=True)
class ComparisonTexts:
    """Two training texts for a fair with/without-duplicates experiment (see `comparison_texts`)."""

    with_duplicates: str  # training text, then the shared validation text
    without_duplicates: str  # the same length of unique training text, then the same validation text
    train_chars: int  # length of the training part of each text
    val_chars: int  # length of the shared validation part (the last 10% of each text)
    duplicate_share: float  # share of documents in the with-duplicates training part that are duplicates


def comparison_texts(docs: list[str], report: DedupReport, max_val_chars: int = 100_000, seed: int = 0) -> ComparisonTexts:
    """Build the two texts for 'does removing duplicates help?' so that only the duplicates differ.

    Both texts have the same length and end with the same validation text, which is exactly the last tenth of
    each, so the trainer's positional 90/10 split scores both runs on identical, unseen text. Validation documents
    are unique documents whose duplicates are left out of both training parts (no leak through a copy). Documents
    are shuffled with a fixed seed, so the duplicates are spread through the training text as in a real crawl.

    >>> docs = [f"document number {i} " * 5 for i in range(40)]
    >>> docs += docs[:20]  # twenty exact copies
    >>> t = comparison_texts(docs, deduplicate(docs, near=False), max_val_chars=500)
    >>> len(t.with_duplicates) == len(t.without_duplicates), t.with_duplicates[-t.val_chars:] == t.without_duplicates[-t.val_chars:]
    (True, True)
    """
    rng = random.Random(seed)
    kept = list(report.kept)
    rng.shuffle(kept)
    unique_chars = sum(len(docs[i]) + 2 for i in kept)
    target = min(max_val_chars, unique_chars // 15)  # leave room for 9x as much unique training text
    val_ids: set[int] = set()
    val_len = 0
    for i in kept:
        if val_len >= target:
            break
        val_ids.add(i)
        val_len += len(docs[i]) + 2
    duplicate_of = {r.index: r.duplicate_of for r in report.removed}
    without = [i for i in kept if i not in val_ids]
    with_dups = [i for i in range(len(docs)) if i not in val_ids and duplicate_of.get(i) not in val_ids]
    rng.shuffle(with_dups)
    val_text = "\n\n".join(docs[i] for i in sorted(val_ids)) + "\n\n"
    train_chars = 9 * len(val_text)
    without_text = "\n\n".join(docs[i] for i in without)
    with_text = "\n\n".join(docs[i] for i in with_dups)
    if min(len(without_text), len(with_text)) < train_chars:
        raise ValueError("This corpus is too small to hold out a validation set and still train on 9 times as much.")
    # share of duplicates among the documents that fit in the training part
    used, dups, n = 0, 0, 0
    for i in with_dups:
        if used >= train_chars:
            break
        used += len(docs[i]) + 2
        n += 1
        dups += i in duplicate_of
    return ComparisonTexts(with_text[:train_chars] + val_text, without_text[:train_chars] + val_text,
                           train_chars, len(val_text), dups / max(n, 1))
