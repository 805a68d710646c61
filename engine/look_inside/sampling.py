"""Sampling: how a GPT's next-token scores become a choice, shown knob by knob (lesson 8).

Softmax turns the model's scores (logits) into probabilities; three knobs reshape them before a token is drawn,
in the order Hugging Face `generate` applies them, and what they remove is renormalised away:
- temperature: divide the logits by T (T < 1 sharpens, T -> 0 is greedy; T > 1 flattens), the Boltzmann form of
  Ackley, Hinton & Sejnowski 1985, as GPT-2 samples;
- top-k: keep only the k likeliest tokens (Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story Generation");
- top-p (nucleus): the smallest set of likeliest tokens whose mass reaches p (Holtzman et al. 2020, "The Curious
  Case of Neural Text Degeneration").
Ties go to the lower token id, so every result is deterministic. Show-me functions, all plain data:
`next_token_distribution` (the raw softmax beside the filtered one, so a page can show what the knobs removed) and
`generate_steps` (token by token, each step with its distribution; sampled with a seeded generator or forced to the
token a learner clicked; on the model's key-value cache, `GPT.forward_cached`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.device import single_thread
from engine.transform.kv_cache import KVCache, generation_window
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

# Below this temperature sampling is greedy: dividing by ~0 would overflow, and the limit is the argmax anyway.
GREEDY_BELOW = 1e-3

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def display_text(tokenizer: Tokenizer, token_id: int) -> str:
    """A token as a UI shows it: whitespace made visible, other control characters escaped.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> tok = CharTokenizer.from_text("a b\\n")
    >>> [display_text(tok, i) for i in range(tok.vocab_size)]
    ['↵', '␣', 'a', 'b']
    """
    text = tokenizer.id_to_token(token_id)
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def encode_prompt(tokenizer: Tokenizer, prompt: str, block_size: int) -> tuple[list[int], int]:
    """The prompt's ids, cut to the last `block_size` (all the model can see at once), and how many were dropped.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> encode_prompt(CharTokenizer.from_text("abc"), "abcab", block_size=3)
    ([2, 0, 1], 2)
    """
    ids = _encode(tokenizer, prompt)
    dropped = max(0, len(ids) - block_size)
    return ids[dropped:], dropped


def reading_window(tokenizer: Tokenizer, prompt: str, block_size: int) -> tuple[list[int], int]:
    """The prompt's ids cut to the window the model reads when writing the next token
    (`engine.transform.kv_cache.generation_window`: at most `block_size`), and how many were dropped from the front.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> reading_window(CharTokenizer.from_text("abc"), "abcab", block_size=4)  # 5 > 4: the oldest quarter went
    ([2, 0, 1], 2)
    """
    ids = _encode(tokenizer, prompt)
    dropped = len(ids) - generation_window(len(ids), block_size)
    return ids[dropped:], dropped


def _encode(tokenizer: Tokenizer, prompt: str) -> list[int]:
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("the prompt is empty: the model needs at least one token to predict the next")
    return ids


@contextmanager
def eval_mode(model: GPT) -> Iterator[GPT]:
    """Evaluation mode (no dropout), no gradients and one torch thread (engine.device.single_thread, which says
    why) for the block; all restored after. (Generation adds torch.inference_mode inside: its tensors never
    leave it; callers of this block may keep theirs.)"""
    with single_thread():
        was_training = model.training
        if was_training:  # (a model already in eval mode is left alone: walking its modules at every token is not free)
            model.eval()
        try:
            with torch.no_grad():
                yield model
        finally:
            if was_training:
                model.train()


def filter_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Probabilities (V,) after temperature, top-k and top-p, renormalised; removed tokens get exactly 0.

    >>> logits = torch.tensor([2.0, 1.0, 1.0, -1.0])
    >>> filter_probs(logits, top_k=2).gt(0).tolist()  # a tie at the cut: the lower id stays
    [True, True, False, False]
    >>> filter_probs(logits, temperature=0.0).tolist()  # greedy
    [1.0, 0.0, 0.0, 0.0]
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    logits = logits.float()  # (V,)
    if temperature < GREEDY_BELOW:
        probs = torch.zeros_like(logits)  # (V,)
        probs[int(torch.argmax(logits))] = 1.0  # argmax returns the first (lowest id) of tied maxima
        return probs
    probs = F.softmax(logits / temperature, dim=-1)  # (V,)
    # likeliest first; a stable sort keeps tied tokens in id order, so cuts are deterministic
    order = torch.sort(probs, descending=True, stable=True).indices  # (V,)
    keep = torch.ones_like(probs, dtype=torch.bool)  # (V,), in sorted order
    if top_k is not None:
        keep[top_k:] = False
    if top_p is not None:
        kept = torch.where(keep, probs[order], 0.0)
        kept = kept / kept.sum()  # nucleus over what top-k left (renormalised), as Hugging Face does
        before = torch.cumsum(kept, dim=0) - kept  # (V,) mass of the likelier tokens before each one
        keep &= before < top_p  # the smallest prefix whose mass reaches top_p
    mask = torch.zeros_like(keep)
    mask[order] = keep  # back to id order
    probs = torch.where(mask, probs, 0.0)
    return probs / probs.sum()


def entropy(probs: torch.Tensor) -> float:
    """Shannon entropy in nats (0 log 0 counts as 0): 0 for a certain choice, ln(V) for a uniform one.

    >>> round(entropy(torch.tensor([0.5, 0.5, 0.0])), 4)
    0.6931
    """
    p = probs[probs > 0].double()
    return float(-(p * p.log()).sum())


@dataclass(frozen=True)
class Candidate:
    """One possible next token: its probability before and after the knobs."""

    id: int
    text: str  # display text (whitespace made visible)
    raw: float  # plain softmax of the logits (temperature 1, nothing removed)
    filtered: float  # after temperature, top-k and top-p, renormalised; 0 if the knobs removed it


@dataclass(frozen=True)
class NextToken:
    """What the model would say next after a prompt, and what the knobs did to it."""

    tokens: list[str]  # the prompt's tokens as the model saw them (display text)
    dropped: int  # tokens cut from the front (a prompt longer than block_size: engine.transform.kv_cache.generation_window)
    temperature: float
    top_k: int | None
    top_p: float | None
    candidates: list[Candidate]  # the likeliest `show` tokens, likeliest first (by the raw softmax)
    kept: int  # how many tokens have non-zero probability after the knobs
    entropy_raw: float  # nats
    entropy_filtered: float  # nats


def _candidates(tokenizer: Tokenizer, raw: torch.Tensor, filtered: torch.Tensor, show: int) -> list[Candidate]:
    # raw order with ties by id (stable); the filtered order is the same, as temperature keeps the ranking
    order = torch.sort(raw, descending=True, stable=True).indices[:show].tolist()
    return [Candidate(i, display_text(tokenizer, i), float(raw[i]), float(filtered[i])) for i in order]


def last_logits(model: GPT, ids: list[int]) -> torch.Tensor:
    """The model's logits (V,) for the token after `ids` (at most block_size of them): the last position only."""
    device = next(model.parameters()).device
    with eval_mode(model), torch.inference_mode():
        logits, _ = model(torch.tensor([ids], dtype=torch.long, device=device), last_only=True)  # (1, 1, V)
    return logits[0, -1].float().cpu()  # (V,)


def next_token_distribution(
    model: GPT, tokenizer: Tokenizer, prompt: str, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, show: int = 10,
) -> NextToken:
    """Show-me function: the next-token distribution for `prompt`, raw and after the knobs (read over the window
    generation reads, so the bars agree with the step that writes after them)."""
    ids, dropped = reading_window(tokenizer, prompt, model.config.block_size)
    logits = last_logits(model, ids)  # (V,)
    raw = F.softmax(logits, dim=-1)  # (V,)
    filtered = filter_probs(logits, temperature, top_k, top_p)  # (V,)
    return NextToken(
        tokens=[display_text(tokenizer, i) for i in ids], dropped=dropped, temperature=temperature, top_k=top_k,
        top_p=top_p, candidates=_candidates(tokenizer, raw, filtered, show), kept=int((filtered > 0).sum()),
        entropy_raw=entropy(raw), entropy_filtered=entropy(filtered),
    )


@dataclass(frozen=True)
class Step:
    """One generated token and the distribution it came from."""

    index: int  # 0 for the first new token
    id: int
    text: str  # display text
    prob: float  # its probability in the distribution it was drawn from (after the knobs)
    raw: float  # its plain softmax probability
    forced: bool  # chosen by the caller (a learner's click), not sampled
    alternatives: list[Candidate]  # the likeliest few at this step, likeliest first


class _Context:
    """The ids so far and a KV cache over the window the model reads (rebuilt when the window drops its oldest
    quarter: `engine.transform.kv_cache.generation_window`)."""

    def __init__(self, model: GPT, ids: list[int], use_cache: bool):
        self.model, self.ids, self.use_cache = model, list(ids), use_cache
        self.device = next(model.parameters()).device
        self.cache: KVCache | None = None
        self.pending: list[int] = []  # ids not yet fed to the cache (the first call builds it over the window)

    def logits(self) -> torch.Tensor:
        """Logits (V,) for the next token."""
        window = generation_window(len(self.ids), self.model.config.block_size)
        if not self.use_cache:
            return last_logits(self.model, self.ids[-window:])
        if self.cache is None or self.cache.length + len(self.pending) != window:
            # fresh cache over the visible window: positions restart at 0, as the uncached model sees them
            self.cache, self.pending = KVCache(self.model.config.n_layer), self.ids[-window:]
        x = torch.tensor([self.pending], dtype=torch.long, device=self.device)  # (1, T_new)
        with eval_mode(self.model), torch.inference_mode():  # the cache's tensors stay inside inference mode
            logits = self.model.forward_cached(x, self.cache, last_only=True)  # (1, 1, V): the last position only
        self.pending = []
        return logits[0, -1].float().cpu()  # (V,)

    def push(self, token_id: int) -> None:
        self.ids.append(token_id)
        self.pending.append(token_id)


def generate_steps(
    model: GPT, tokenizer: Tokenizer, prompt: str, max_new_tokens: int, temperature: float = 1.0,
    top_k: int | None = None, top_p: float | None = None, seed: int | None = 0,
    forced: list[int] | None = None, alternatives: int = 5, use_cache: bool = True,
) -> Iterator[Step]:
    """Show-me function: generate token by token, yielding each `Step` as it is made (a UI can stream them).

    Step i takes `forced[i]` when given (the token a learner clicked), otherwise samples from the filtered
    distribution with a `torch.Generator` seeded by `seed` (same seed, same text). The model reads the window
    `engine.transform.kv_cache.generation_window` gives for the text so far (at most block_size tokens).
    """
    ids = _encode(tokenizer, prompt)
    forced = forced or []
    generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
    context = _Context(model, ids, use_cache)
    # One thread for the whole generation, not switched on and off at every token: changing torch's thread pool
    # costs more than a token's arithmetic (docs/benchmarks.md, "Figures behind choices in the code"). The
    # caller's code between two tokens runs on one thread too; the count is restored when the loop ends or the
    # generator is closed (also when a caller stops early and drops it).
    with single_thread():
        yield from _steps(context, tokenizer, max_new_tokens, temperature, top_k, top_p, forced, generator,
                          alternatives)


def _steps(context: _Context, tokenizer: Tokenizer, max_new_tokens: int, temperature: float, top_k: int | None,
           top_p: float | None, forced: list[int], generator: torch.Generator, alternatives: int) -> Iterator[Step]:
    for i in range(max_new_tokens):
        logits = context.logits()  # (V,)
        raw = F.softmax(logits, dim=-1)  # (V,)
        probs = filter_probs(logits, temperature, top_k, top_p)  # (V,)
        if i < len(forced):
            token = int(forced[i])
            if not 0 <= token < logits.numel():
                raise ValueError(f"forced token {token} is not in the vocabulary (0..{logits.numel() - 1})")
        else:
            token = int(torch.multinomial(probs, 1, generator=generator))
        yield Step(
            index=i, id=token, text=display_text(tokenizer, token), prob=float(probs[token]), raw=float(raw[token]),
            forced=i < len(forced), alternatives=_candidates(tokenizer, raw, probs, alternatives),
        )
        context.push(token)
