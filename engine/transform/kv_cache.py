"""The key-value cache that makes generation cheap, and the window of text the model reads while it generates.

Generating one token at a time, a plain forward pass would recompute every earlier position's keys and values for
every new token. The cache keeps them, so a new token costs one position's work (Pope et al. 2022, "Efficiently
Scaling Transformer Inference"). `GPT.forward_cached` (engine.transform.model) reads and extends it; training
never uses it. `generation_window` says how much of a long text the model reads, so that the cache stays valid
(the learned position table ties each cached key to where its token sat) and every caller reads the same tokens.

Shapes in comments: B = batch size, nh = n_head, hs = head size, L = positions cached, T = new positions.
"""

from __future__ import annotations

import torch


class LayerCache:
    """One layer's keys and values for the positions seen so far, grown as generation goes on."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None  # (B, nh, L, hs)
        self.v: torch.Tensor | None = None  # (B, nh, L, hs)

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.size(2)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' (B, nh, T, hs) keys and values; returns all of them, (B, nh, L + T, hs)."""
        self.k = k if self.k is None else torch.cat((self.k, k), dim=2)
        self.v = v if self.v is None else torch.cat((self.v, v), dim=2)
        return self.k, self.v


class KVCache:
    """Every layer's `LayerCache`: what `GPT.forward_cached` reads and extends.

    >>> cache = KVCache(n_layer=2)
    >>> len(cache.layers), cache.length
    (2, 0)
    """

    def __init__(self, n_layer: int):
        self.layers = [LayerCache() for _ in range(n_layer)]

    @property
    def length(self) -> int:
        """How many positions are cached (the position the next token will take)."""
        return self.layers[0].length if self.layers else 0


def generation_window(n: int, block_size: int) -> int:
    """How many of the last `n` tokens the model reads when it writes the next one: all of them while they fit,
    and once the text outgrows block_size, between 3/4 of a block and a whole block.

    Why not always the last block_size: the learned position table ties every cached key and value to where its
    token sat in the window, so sliding the window by one token would mean reading the whole window again for
    every new token (64 positions' work instead of one). Instead the oldest quarter of the window drops out at
    once, the cache is rebuilt over the rest, and the next block_size // 4 tokens each cost one position's work
    again. A function of `n` alone, so the cached and uncached paths read exactly the same tokens.

    >>> [generation_window(n, 8) for n in range(6, 15)]  # block 8: grows to 8, drops to 6, grows again
    [6, 7, 8, 6, 7, 8, 6, 7, 8]
    """
    if n <= block_size:
        return n
    keep = block_size - block_size // 4  # what is left after the oldest quarter drops out
    return keep + (n - block_size - 1) % (block_size - keep + 1)
