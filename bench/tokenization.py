"""Benchmark of the Extract and Tokenize stages: `python -m bench tokenize` (appends to docs/benchmarks.md).

What a learner waits for: training a byte-level BPE (target < 1 s for a 4,096 vocabulary on 1 MB), tokenizing
what they type in the playground (target < 50 ms), the merge tracer's step-through, cleaning and MinHash
near-duplicate detection on the 5,000-page crawl sample (target < 5 s). Each figure is the median of a few
runs, except "first training in a process", which includes the tokenizers library's thread-pool start-up.
"""

from __future__ import annotations

import os
import time

from bench import report as bench  # the report helpers, not the CLI (which imports this)
from bench.report import median_seconds
from engine.extract import corpus, crawl, dedup
from engine.extract.cleaning import clean
from engine.transform import bpe_trace, tokenization


def run(repeat: int = 3, write: bool = True) -> list[tuple[str, str]]:
    """Measure, print and (if `write`) append the figures; returns the (measure, value) rows."""
    load = os.getloadavg()[0]
    shakespeare = corpus.load_corpus("tinyshakespeare")
    one_mb = shakespeare.encode("utf-8")[:1_000_000].decode("utf-8", errors="ignore")
    playground = shakespeare[:2_000] + " naïve café 日本語 🙂👍🏽"

    t0 = time.perf_counter()
    tok = tokenization.train_bpe(one_mb, 4096)
    cold = time.perf_counter() - t0
    warm = median_seconds(lambda: tokenization.train_bpe(one_mb, 4096), repeat)
    assert tok.vocab_size == 4096

    encode = median_seconds(lambda: tok.encode_with_offsets(playground), 20)
    chips = median_seconds(lambda: tok.token_chips(playground), 20)
    encode_1mb = median_seconds(lambda: tok.encode(one_mb), repeat)
    n_tokens = len(tok.encode(one_mb))
    trace = median_seconds(lambda: bpe_trace.trace_merges(shakespeare, 200), repeat)

    crawl._make_crawl.cache_clear()
    t0 = time.perf_counter()
    pages = [d.text for d in crawl.make_crawl()]
    make = time.perf_counter() - t0
    cleaning = median_seconds(lambda: clean(pages), repeat)
    near_only = median_seconds(lambda: dedup.deduplicate(pages, exact=False), repeat)
    both = median_seconds(lambda: dedup.deduplicate(pages), repeat)
    report = dedup.deduplicate(pages)

    rows = [
        ("1-minute load average when the run started (other processes share the cores)", f"{load:.1f}"),
        ("BPE training, vocab 4,096 on 1 MB of Shakespeare (target < 1 s)", f"{warm:.2f} s"),
        ("  first training in a process (library warm-up included)", f"{cold:.2f} s"),
        ("encode_with_offsets, 2,000-character playground text (target < 50 ms)", f"{encode * 1000:.1f} ms"),
        ("token_chips, same text", f"{chips * 1000:.1f} ms"),
        ("encode 1 MB (ids only)", f"{encode_1mb:.2f} s ({len(one_mb) / n_tokens:.2f} chars/token)"),
        ("trace_merges, 200 merges on a 100 KB excerpt", f"{trace:.2f} s"),
        (f"make_crawl, {len(pages):,} pages", f"{make:.2f} s"),
        ("clean (all five steps) on the crawl", f"{cleaning:.2f} s"),
        (
            f"MinHash near-dup detection on {len(pages):,} pages, 128 permutations, word 5-shingles (target < 5 s)",
            f"{near_only:.2f} s",
        ),
        (
            "exact + near dedup on the crawl",
            f"{both:.2f} s ({report.exact_removed} exact, {report.near_removed} near removed)",
        ),
    ]
    for measure, value in rows:
        print(f"{measure:<100} {value}")
    if write:
        bench.append_section("Tokenize and extract (bench.tokenization)", rows)
    return rows


if __name__ == "__main__":
    run()
