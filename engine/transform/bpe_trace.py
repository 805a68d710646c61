"""The BPE merge tracer: byte-level BPE training re-run slowly and readably, one merge at a time.

Lesson 4's step-through shows BPE learning its first merges: which pair became a new token, how often it
occurred, and how much shorter the excerpt got. The fast trainer (`tokenization.train_bpe`, Hugging Face
`tokenizers`) does not report its steps, so this is the algorithm again in plain Python, minbpe style (Karpathy's
`minbpe/basic.py`: count adjacent pairs, merge the most frequent, repeat), on an excerpt of at most
`MAX_TRACE_CHARS` characters, split first as GPT-2's pre-tokenizer splits (Radford et al. 2019), so merges never
cross a chunk boundary, as in the real byte-level BPE. Pair counts are kept up to date incrementally: after a merge only
the chunks that held the merged pair are counted again.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from engine.transform.byte_level import readable

MAX_TRACE_CHARS = 100_000  # the tracer is pure Python: it works on an excerpt at most this long

# GPT-2's pre-tokenizer split, with Python `re` classes for \p{L} (letters) and \p{N} (digits): merges never
# cross these chunk boundaries, as in the real byte-level BPE. The chunks always join back to the text.
GPT2_SPLIT = re.compile(r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


@dataclass(frozen=True)
class MergeStep:
    """One BPE merge: the pair (as readable text) that became a new token, and how often it occurred."""

    rank: int  # 1 for the first merge
    pair: tuple[str, str]
    new_token: str
    count: int  # occurrences of the pair in the excerpt just before this merge
    pair_ids: tuple[int, int]
    new_id: int  # 256 + rank - 1
    tokens_after: int  # length of the excerpt in tokens after this merge


def trace_merges(text: str, num_merges: int, max_chars: int = MAX_TRACE_CHARS) -> list[MergeStep]:
    """Train byte-level BPE slowly and readably on (an excerpt of) `text`, minbpe style: start from UTF-8 bytes,
    repeatedly merge the most frequent adjacent pair (ties: the smallest pair of ids). Overlapping pairs are
    counted, as minbpe's get_stats does; merging replaces them left to right. Stops early when no pair is left.

    Wikipedia's example, "aaabdaaabac": "aa" occurs 4 times (counting overlaps), then "ab", then "aa"+"ab".

    >>> [(s.pair, s.count) for s in trace_merges("aaabdaaabac", 3)]
    [(('a', 'a'), 4), (('a', 'b'), 2), (('aa', 'ab'), 2)]
    """
    chunks = Counter(GPT2_SPLIT.findall(text[:max_chars]))
    words = [list(chunk.encode("utf-8")) for chunk in chunks]
    freqs = list(chunks.values())
    vocab = {i: bytes([i]) for i in range(256)}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)

    def tally(w: int, sign: int) -> None:
        for pair in zip(words[w], words[w][1:], strict=False):
            counts[pair] += sign * freqs[w]
            if sign > 0:
                where[pair].add(w)
            elif counts[pair] == 0:
                del counts[pair]

    for w in range(len(words)):
        tally(w, +1)
    length = sum(len(word) * f for word, f in zip(words, freqs, strict=True))
    steps = []
    for rank in range(1, num_merges + 1):
        if not counts:
            break
        pair, count = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        new_id = 255 + rank
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        for w in sorted(where.pop(pair)):
            word = words[w]
            if len(word) < 2:
                continue
            tally(w, -1)
            merged, k = [], 0
            while k < len(word):
                if k + 1 < len(word) and (word[k], word[k + 1]) == pair:
                    merged.append(new_id)
                    k += 2
                else:
                    merged.append(word[k])
                    k += 1
            length -= (len(word) - len(merged)) * freqs[w]
            words[w] = merged
            tally(w, +1)
        steps.append(
            MergeStep(
                rank,
                (readable(vocab[pair[0]]), readable(vocab[pair[1]])),
                readable(vocab[new_id]),
                count,
                pair,
                new_id,
                length,
            )  # fmt: skip
        )
    return steps
