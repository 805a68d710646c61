"""The BPE merge tracer: a hand-worked example, early stop, counts against a naive count, the pre-tokenizer split;
and the byte alphabet it shows merges in."""

from __future__ import annotations

import doctest

from engine.transform import bpe_trace, byte_level
from engine.transform.bpe_trace import GPT2_SPLIT, trace_merges
from tests.engine.transform.test_tokenization import random_strings


def test_trace_merges_hand_worked_example():
    # "aaabdaaabac": overlapping pairs, so "aa" occurs 4 times; then "ab" (ties broken by smallest ids:
    # (97, 98) before (256, 97)); then the new tokens "aa" + "ab".
    steps = trace_merges("aaabdaaabac", 3)
    assert steps[0].pair == ("a", "a") and steps[0].count == 4 and steps[0].new_token == "aa"
    assert steps[0].pair_ids == (97, 97) and steps[0].new_id == 256
    assert [(s.pair, s.count, s.new_token) for s in steps[1:]] == [
        (("a", "b"), 2, "ab"),
        (("aa", "ab"), 2, "aaab"),
    ]
    assert [s.tokens_after for s in steps] == [9, 7, 5]  # 11 bytes; "aaab" is [aa, a, b] after merge 1


def test_trace_merges_stops_when_nothing_is_left_to_merge():
    steps = trace_merges("ab ab", 10)  # chunks "ab" and " ab": merges "ab", then " " + "ab"
    assert [s.new_token for s in steps] == ["ab", " ab"]
    assert trace_merges("", 5) == []


def test_trace_merges_counts_agree_with_a_naive_count():
    text = "the cat, the hat; the bat? That's the thing."
    steps = trace_merges(text, 5)
    chunks = [list(c.encode()) for c in GPT2_SPLIT.findall(text)]
    naive = sum(1 for c in chunks for a, b in zip(c, c[1:], strict=False) if (a, b) == steps[0].pair_ids)
    assert steps[0].count == naive


def test_gpt2_split_covers_every_string():
    for text in random_strings(seed=7):
        assert "".join(GPT2_SPLIT.findall(text)) == text


def test_byte_alphabet_spells_every_byte_once_and_shows_split_characters():
    alphabet = byte_level.bytes_to_unicode()
    assert sorted(alphabet) == list(range(256)) and len(set(alphabet.values())) == 256
    assert byte_level.readable("🙂".encode()) == "🙂"
    assert byte_level.readable("🙂".encode()[1:]) == "<0x9F><0x99><0x82>"


def test_docstring_examples_run():
    assert doctest.testmod(bpe_trace).failed == 0 and doctest.testmod(byte_level).failed == 0
