"""Extract, step two: clean a corpus's documents and report what each step changed or removed.

What a pre-training pipeline does after collecting text, at toy scale: Unicode and whitespace normalisation,
boilerplate lines, very short and very repetitive documents. Every step can be toggled and returns plain data
(`CleaningReport`), so the UI can show what each one removed and cache the result by content.

Sources for the filters: the heuristics of Gopher's MassiveText (Rae et al. 2021, appendix A: minimum length,
repeated n-gram fraction) and C4 / RefinedWeb-style line filtering (Raffel et al. 2020; Penedo et al. 2023),
simplified so a learner can see and toggle each one.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CleaningOptions:
    """Which cleaning steps run, and their knobs. Steps run in the order of the fields."""

    nfkc: bool = True  # Unicode NFKC: "ﬁ" -> "fi", full-width "Ａ" -> "A", no-break space -> space
    whitespace: bool = True  # trailing spaces, runs of spaces, 3+ newlines, odd Unicode spaces
    boilerplate: bool = True  # drop lines that recur across many documents (nav bars, cookie banners)
    boilerplate_min_fraction: float = 0.05  # ...in at least this share of the documents
    boilerplate_min_docs: int = 3  # ...and in at least this many documents
    short: bool = True  # drop documents shorter than min_chars
    min_chars: int = 50
    repetitive: bool = True  # drop documents whose word 3-grams repeat too much (spam, keyword stuffing)
    max_repetition: float = 0.3


def suggested_options(kind: str) -> CleaningOptions:
    """Sensible starting toggles for a corpus kind. The web filters were made for web pages: on code, lines
    such as "else:" recur in most files and would be stripped as boilerplate, so code starts with that
    step (and the repetition filter) off.

    >>> suggested_options("code").boilerplate, suggested_options("web").boilerplate
    (False, True)
    """
    if kind == "code":
        return CleaningOptions(boilerplate=False, repetitive=False)
    return CleaningOptions()


@dataclass(frozen=True)
class CorpusStats:
    documents: int
    characters: int
    words: int


@dataclass(frozen=True)
class Example:
    """One thing a step changed or removed: `after` is "" for a removed document or line."""

    before: str
    after: str
    note: str = ""


@dataclass(frozen=True)
class StepReport:
    """What one cleaning step did. `flagged` lists what it looked for, most frequent first (e.g. the
    boilerplate lines with the number of documents each appeared in)."""

    name: str  # "nfkc" | "whitespace" | "boilerplate" | "short" | "repetitive"
    enabled: bool
    docs_changed: int
    docs_removed: int
    chars_removed: int
    examples: list[Example] = field(default_factory=list)
    flagged: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class CleaningReport:
    before: CorpusStats
    after: CorpusStats
    steps: list[StepReport]
    docs: list[str]  # the cleaned documents that survived
    kept: list[int]  # for each of them, its index in the input list


def corpus_stats(docs: list[str]) -> CorpusStats:
    """Documents, characters and whitespace-separated words.

    >>> corpus_stats(["to be", "or not"])
    CorpusStats(documents=2, characters=11, words=4)
    """
    return CorpusStats(len(docs), sum(len(d) for d in docs), sum(len(d.split()) for d in docs))


_ODD_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_INVISIBLE = re.compile(r"[\u200b\ufeff]")  # zero-width space, stray BOM (not U+200D, which joins emoji)


def normalize_whitespace(text: str) -> str:
    """Tidy whitespace but keep each line's leading indentation (code stays valid).

    >>> normalize_whitespace("  def f():\\r\\n      return  1   \\n\\n\\n\\nx\\u00a0=\\t2")
    '  def f():\\n      return 1\\n\\nx = 2'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", _ODD_SPACES.sub(" ", text))
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        lines.append(line[: len(line) - len(body)] + re.sub(r"[ \t]+", " ", body).rstrip() if body else "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def repetition_score(text: str, n: int = 3) -> float:
    """Share of the word n-grams that repeat an earlier one (Gopher's duplicate n-gram fraction, by count).

    >>> repetition_score("buy now buy now buy now")  # 4 trigrams, the last 2 are repeats
    0.5
    >>> repetition_score("to be or not to be")
    0.0
    """
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def find_boilerplate_lines(docs: list[str], min_fraction: float = 0.05, min_docs: int = 3) -> Counter[str]:
    """Lines (stripped) that appear in at least max(min_docs, min_fraction * len(docs)) documents.

    >>> pages = [f"Home | About\\nstory {i}" for i in range(4)]
    >>> dict(find_boilerplate_lines(pages))
    {'Home | About': 4}
    """
    counts: Counter[str] = Counter()
    for doc in docs:
        counts.update({line.strip() for line in doc.split("\n") if line.strip()})
    need = max(min_docs, min_fraction * len(docs))
    return Counter({line: c for line, c in counts.items() if c >= need})


def clean(docs: list[str], options: CleaningOptions | None = None, max_examples: int = 5) -> CleaningReport:
    """Run the enabled cleaning steps in order and report what each one did.

    >>> pages = [f"Home | About\\nChapter {i}: a story about the number {i}, and why it matters." for i in range(4)]
    >>> report = clean(pages + ["Home | About\\n" + "buy cheap pills now " * 5, "Home | About\\nLoading…"])
    >>> report.after.documents, report.docs[0]
    (4, 'Chapter 0: a story about the number 0, and why it matters.')
    >>> [(s.name, s.docs_changed, s.docs_removed) for s in report.steps]
    [('nfkc', 1, 0), ('whitespace', 1, 0), ('boilerplate', 6, 0), ('short', 0, 1), ('repetitive', 0, 1)]
    """
    opts = options or CleaningOptions()
    items = list(enumerate(docs))  # (original index, current text)
    steps: list[StepReport] = []

    def rewrite(name: str, enabled: bool, fn) -> None:
        nonlocal items
        if not enabled:
            steps.append(StepReport(name, False, 0, 0, 0))
            return
        out, examples, changed, removed_chars = [], [], 0, 0
        for i, text in items:
            new = fn(text)
            if new != text:
                changed += 1
                removed_chars += len(text) - len(new)
                if len(examples) < max_examples:
                    examples.append(_diff_example(text, new))
            out.append((i, new))
        items = out
        steps.append(StepReport(name, True, changed, 0, removed_chars, examples))

    def drop(name: str, enabled: bool, bad, note) -> None:
        nonlocal items
        if not enabled:
            steps.append(StepReport(name, False, 0, 0, 0))
            return
        kept, gone = [], []
        for i, text in items:
            (gone if bad(text) else kept).append((i, text))
        items = kept
        examples = [Example(_clip(t), "", note(t)) for _, t in gone[:max_examples]]
        steps.append(StepReport(name, True, 0, len(gone), sum(len(t) for _, t in gone), examples))

    rewrite("nfkc", opts.nfkc, lambda t: unicodedata.normalize("NFKC", t))
    rewrite("whitespace", opts.whitespace, normalize_whitespace)

    if opts.boilerplate:
        lines = find_boilerplate_lines(
            [t for _, t in items], opts.boilerplate_min_fraction, opts.boilerplate_min_docs
        )
        out, examples, changed, removed_docs, removed_chars = [], [], 0, 0, 0
        for i, text in items:
            new = "\n".join(ln for ln in text.split("\n") if ln.strip() not in lines).strip("\n")
            if new != text:
                changed += 1
                removed_chars += len(text) - len(new)
                if len(examples) < max_examples:
                    examples.append(Example(_clip(text), _clip(new), "recurring lines removed"))
            if new.strip():
                out.append((i, new))
            else:
                removed_docs += 1  # nothing but boilerplate
        items = out
        flagged = lines.most_common(20)
        steps.append(StepReport("boilerplate", True, changed, removed_docs, removed_chars, examples, flagged))
    else:
        steps.append(StepReport("boilerplate", False, 0, 0, 0))

    drop(
        "short",
        opts.short,
        lambda t: len(t.strip()) < opts.min_chars,
        lambda t: f"{len(t.strip())} characters",
    )
    drop(
        "repetitive",
        opts.repetitive,
        lambda t: repetition_score(t) > opts.max_repetition,
        lambda t: f"{repetition_score(t):.0%} of its word 3-grams are repeats",
    )
    kept_docs = [t for _, t in items]
    return CleaningReport(
        corpus_stats(docs), corpus_stats(kept_docs), steps, kept_docs, [i for i, _ in items]
    )


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _diff_example(before: str, after: str, context: int = 25) -> Example:
    """The region where two texts first differ, with a little context (for "what changed" examples).

    >>> _diff_example("the ﬁnal act", "the final act")
    Example(before='the ﬁnal act', after='the final act', note='')
    """
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end_b, end_a = len(before), len(after)
    while end_b > start and end_a > start and before[end_b - 1] == after[end_a - 1]:
        end_b, end_a = end_b - 1, end_a - 1
    lo = max(0, start - context)
    return Example(before[lo : end_b + context], after[lo : end_a + context])
