"""Self-supervised labels: counts of what follows a context, worked out by hand."""

import pytest

from engine.transform.next_token import following_counts, show_char


def test_hand_worked_example():
    r = following_counts("abab ab!", "ab", top_k=5)
    # 'ab' occurs 3 times, followed by 'a', ' ' and '!'
    assert r.occurrences == 3 and r.distinct == 3
    assert sorted((c.char, c.count) for c in r.rows) == [(" ", 1), ("!", 1), ("a", 1)]


def test_overlapping_matches_and_newlines():
    r = following_counts("aaa\na", "a", top_k=5)
    assert {c.char: c.count for c in r.rows} == {"a": 2, "\n": 1}
    assert {c.label for c in r.rows} == {"a", "⏎ newline"}


def test_top_k_and_other():
    r = following_counts("xa xb xc xd xa", "x", top_k=2)
    assert r.rows[0].char == "a" and r.rows[0].count == 2 and r.rows[0].share == pytest.approx(0.4)
    assert r.other == 2


def test_missing_context_and_empty_context():
    assert following_counts("hello", "zz").occurrences == 0
    with pytest.raises(ValueError):
        following_counts("hello", "")
    assert show_char(" ") == "␣ space"
