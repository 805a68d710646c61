"""Timings for the inside-the-model and sampling show-me functions (engine.look_inside.inspection, engine.look_inside.sampling).

`timings()` returns (measure, value) rows for `python -m bench`'s report. The model is the `lesson`
preset's shape (3 layers x 4 heads x 128 wide, block 64) with tiny Shakespeare's 65 characters, freshly
initialised: speed does not depend on what the weights learned. The target (lesson 8 redraws the distribution
on every knob change): next-token probabilities for a full-block prompt under 100 ms.

Measured with torch set to one thread, then to its default count: the show-me functions run on one thread
whatever the caller set (`engine.look_inside.sampling.eval_mode`), because on a small shared machine whose cores other
processes keep busy a model this small runs many times slower on two threads (docs/benchmarks.md, "Figures behind
choices in the code").
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from bench.report import median_seconds
from engine.look_inside.inspection import attention_view, logit_lens
from engine.look_inside.sampling import generate_steps, next_token_distribution
from engine.train.config import PRESETS
from engine.transform.model import GPT
from engine.transform.tokenization import CharTokenizer
from paths import DEFAULT_CORPUS


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    return 1000 * median_seconds(fn, repeat, warm_up=True)


def timings(repeat: int = 20) -> list[tuple[str, str]]:
    """Measure the show-me functions on a lesson-preset model; returns (measure, value) rows."""
    load = os.getloadavg()[0]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        rows = _measure(repeat, "1 thread")
        torch.set_num_threads(before)
        rows += _measure(repeat, f"caller at {before} threads")[:1]
    finally:
        torch.set_num_threads(before)
    return [("1-minute load average when the run started (other processes share the cores)", f"{load:.1f}"), *rows]


def _measure(repeat: int, threads: str) -> list[tuple[str, str]]:
    torch.manual_seed(0)
    tok = CharTokenizer.from_text(DEFAULT_CORPUS.read_text(encoding="utf-8"))
    model = GPT(PRESETS["lesson"].model_config(tok.vocab_size))
    prompt = DEFAULT_CORPUS.read_text(encoding="utf-8")[:model.config.block_size]  # a full block
    nxt = _median_ms(lambda: next_token_distribution(model, tok, prompt, temperature=0.8, top_k=10, top_p=0.9),
                     repeat)
    cached = _median_ms(lambda: list(generate_steps(model, tok, "ROMEO:", 40)), max(3, repeat // 4)) / 40
    plain = _median_ms(lambda: list(generate_steps(model, tok, "ROMEO:", 40, use_cache=False)),
                       max(3, repeat // 4)) / 40
    attn = _median_ms(lambda: attention_view(model, tok, prompt), repeat)
    lens = _median_ms(lambda: logit_lens(model, tok, prompt), repeat)
    shape = f"lesson preset, vocab {tok.vocab_size}, {len(prompt)}-token prompt, median of {repeat}, {threads}"
    return [
        (f"next-token probabilities ({shape}) (target < 100 ms)", f"{nxt:.1f} ms"),
        ("generate_steps per token, KV cache (40 tokens after a 6-token prompt)", f"{cached:.2f} ms"),
        ("generate_steps per token, no cache", f"{plain:.2f} ms"),
        ("attention_view, same prompt", f"{attn:.1f} ms"),
        ("logit_lens, same prompt", f"{lens:.1f} ms"),
    ]


if __name__ == "__main__":
    for measure, value in timings():
        print(f"{measure:<100} {value}")
