"""Generation speed: how long lesson 8's token-by-token generation takes for 200 tokens of a lesson-preset model.

Lesson 8 lets the learner watch a model write one token at a time (`engine.look_inside.sampling.generate_steps`: each step
keeps its distribution and the likeliest alternatives). Target: 200 tokens in under 0.3 s on the 2-core CPU.
What makes it fast: the key-value cache (one position's work per token), a window that drops its oldest quarter
at once when the text outgrows block_size (`engine.transform.kv_cache.generation_window`: sliding it by one token
would read the whole window again for every token), logits for the last position only, torch.inference_mode, and
not walking the model's modules to switch modes at every token.

`python -m bench generate` times a fresh model of the current lesson preset (the speed does not depend on
what the weights learned); `python -m bench train` times the model it has just trained the same way.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from bench.report import append_section
from engine.look_inside.sampling import generate_steps
from engine.train.config import PRESETS
from engine.transform.model import GPT
from engine.transform.tokenization import CharTokenizer, Tokenizer
from paths import DEFAULT_CORPUS

TARGET_S = 0.3
N_TOKENS = 200
PROMPT = "ROMEO:"


def time_generation(model: GPT, tokenizer: Tokenizer, n_tokens: int = N_TOKENS, repeat: int = 7,
                    use_cache: bool = True) -> dict[str, float]:
    """Seconds for `generate_steps` to make `n_tokens` (after one untimed warm-up): median and best of `repeat`."""
    was_training = model.training
    model.eval()
    try:
        list(generate_steps(model, tokenizer, PROMPT, 20, use_cache=use_cache))  # warm-up: allocations, kernels
        times = []
        for seed in range(repeat):
            t0 = time.perf_counter()
            list(generate_steps(model, tokenizer, PROMPT, n_tokens, seed=seed, use_cache=use_cache))
            times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return {"median_s": statistics.median(times), "best_s": min(times)}


def run(write: bool = True) -> dict[str, Any]:
    """Time 200 tokens from a lesson-preset model, with and without the cache; print and append the figures."""
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")
    tokenizer = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = GPT(PRESETS["lesson"].model_config(tokenizer.vocab_size))
    cached = time_generation(model, tokenizer)
    uncached = time_generation(model, tokenizer, repeat=3, use_cache=False)
    result = {"cached": cached, "uncached": uncached}
    print(result, flush=True)
    if write:
        met = "yes" if cached["median_s"] < TARGET_S else "no"
        append_section("Generation: 200 tokens, token by token (bench.generate)", [
            ("model", f"the lesson preset's shape ({model.num_params():,} parameters), float32, one thread"),
            ("engine.look_inside.sampling.generate_steps, KV cache (median of 7; best)",
             f"{cached['median_s']:.3f} s; {cached['best_s']:.3f} s ({1000 * cached['median_s'] / N_TOKENS:.2f} ms/token)"),
            ("the same without the cache (median of 3)", f"{uncached['median_s']:.3f} s"),
            (f"target < {TARGET_S} s met", met),
        ])
    return result
