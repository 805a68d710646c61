"""Self-supervised labels: for any context, the text itself says which character comes next, and how often.

This is the whole trick of language-model pre-training in one function: nobody labels anything; every position in
a corpus is an example whose "right answer" is simply the character that follows it. Counting those answers for one
context is a bigram/n-gram model, the ancestor of the transformer the course trains later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VISIBLE = {"\n": "⏎ newline", " ": "␣ space", "\t": "⇥ tab"}


@dataclass(frozen=True)
class NextCount:
    char: str  # the character exactly as it appears in the text
    label: str  # how to show it (spaces and newlines made visible)
    count: int
    share: float  # count / all occurrences of the context


@dataclass(frozen=True)
class FollowingCounts:
    context: str
    occurrences: int  # how many times the context appears followed by any character
    rows: list[NextCount]  # most frequent first
    other: int  # occurrences whose next character is outside the top rows
    distinct: int  # how many different characters ever follow the context


def show_char(ch: str) -> str:
    """'a' -> 'a', ' ' -> '␣ space', '\\n' -> '⏎ newline'."""
    return VISIBLE.get(ch, ch)


def following_counts(text: str, context: str, top_k: int = 15) -> FollowingCounts:
    """Count which character follows each (overlapping) occurrence of `context` in `text`.

    >>> r = following_counts("the then they", "the", top_k=3)
    >>> [(c.char, c.count) for c in r.rows], r.occurrences
    ([(' ', 1), ('n', 1), ('y', 1)], 3)
    """
    if not context:
        raise ValueError("type at least one character of context")
    counts: dict[str, int] = {}
    # A lookahead finds overlapping matches ('aa' occurs twice in 'aaa'); DOTALL lets '.' be a newline too.
    for match in re.finditer(f"(?={re.escape(context)}(.))", text, flags=re.DOTALL):
        ch = match.group(1)
        counts[ch] = counts.get(ch, 0) + 1
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = [NextCount(ch, show_char(ch), n, n / total) for ch, n in ranked[:top_k]]
    return FollowingCounts(context, total, rows, total - sum(r.count for r in rows), len(counts))
