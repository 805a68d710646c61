"""A small decoder-only transformer (GPT), written plainly so a learner can read it top to bottom.

Follows Andrej Karpathy's nanoGPT `model.py` (github.com/karpathy/nanoGPT), keeping its order and names
(`n_layer`, `n_head`, `n_embd`, `block_size`) so the code learners meet here is the code they meet elsewhere.
Classes are built bottom-up: LayerNorm, CausalSelfAttention, MLP, Block, GPTConfig, GPT. Sources: the transformer
(Vaswani et al. 2017); GPT-2's pre-norm blocks, learned positions and tied input/output embeddings (Radford et al.
2019, Press & Wolf 2017); the fused attention kernel `F.scaled_dot_product_attention` (FlashAttention, Dao et al.
2022). Two options the lesson preset turns on, neither adding a parameter: rotary position embeddings
(engine.transform.rotary) and QK-norm (Henry et al. 2020). Generation reads through a key-value cache
(engine.transform.kv_cache); training never uses it.

Shapes in comments: B = batch size, T = sequence length, C = n_embd, nh = n_head, hs = head size = C // nh,
V = vocab_size.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from engine.transform.kv_cache import KVCache, LayerCache, generation_window
from engine.transform.rotary import apply_rotary, rotary_tables


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's own cannot drop just the bias).

    Why: GPT-2 has biases; dropping them is slightly faster and trains as well (nanoGPT's finding).
    """

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    """Every position looks at itself and the positions before it, never after (that would be cheating:
    the model is learning to predict the next token)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        # key, query and value projections for all heads, in one matrix multiply
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        # output projection: mixes the heads back into one vector per position
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.qk_norm = config.qk_norm
        self.rope = config.rope
        if config.rope and (config.n_embd // config.n_head) % 2:
            raise ValueError("rotary embeddings turn pairs of numbers: the head size n_embd // n_head must be even")
        if config.rope:  # each layer holds its own (small) tables, so a caller running one block needs nothing else
            cos, sin = rotary_tables(config.block_size, config.n_embd // config.n_head)  # (T, hs) each
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        # the causal mask, only used when attention weights are asked for (SDPA builds its own)
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, config.block_size, config.block_size), persistent=False)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False, cache: LayerCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.size()  # batch size, sequence length, embedding dimensionality (n_embd)
        hs = C // self.n_head

        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)
        dtype = q.dtype
        if cache is None and not return_attention and q.device.type == "cpu" and dtype == torch.bfloat16:
            # The CPU flash-attention backward is several times slower in bf16 than in float32
            # (docs/training-notes.md), so under bf16 autocast on a CPU attention runs in float32 (the matmuls around
            # it stay bf16), and so do QK-norm and the rotation before it (bf16 elementwise work on a CPU is slower,
            # and less exact). On GPUs bf16 attention is the fast path and is left alone.
            q, k, v = q.float(), k.float(), v.float()
        if self.qk_norm:
            # every query and key scaled to the same length: attention scores cannot grow without bound
            q, k = F.rms_norm(q, (hs,)), F.rms_norm(k, (hs,))  # (B, nh, T, hs) each
        if self.rope:
            start = 0 if cache is None else cache.length  # positions L .. L+T-1 when generating with a cache
            q = apply_rotary(q, self.rope_cos, self.rope_sin, start)  # (B, nh, T, hs)
            k = apply_rotary(k, self.rope_cos, self.rope_sin, start)  # (B, nh, T, hs)

        att = None
        if cache is not None:
            # Generation with a cache: the new positions' queries look at every cached key plus their own.
            assert not return_attention, "attention weights are shown from a full forward, not a cached one"
            L = cache.length  # positions already in the cache
            k, v = cache.append(k, v)  # (B, nh, L + T, hs) each
            # query i sits at position L + i and may look at keys 0 .. L + i (True = may attend)
            # (one new token may look at everything: no mask, the kernel's fastest path)
            mask = None if T == 1 else self.mask[:, :, L : L + T, : L + T]  # (1, 1, T, L + T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hs)
        elif return_attention:
            # The same computation written out, so the weights can be shown: scores, mask the future, softmax.
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, hs) @ (B, nh, hs, T) -> (B, nh, T, T)
            scores = scores.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
            att = F.softmax(scores, dim=-1)  # (B, nh, T, T), each row sums to 1
            y = self.attn_dropout(att) @ v  # (B, nh, T, T) @ (B, nh, T, hs) -> (B, nh, T, hs)
        else:
            # One fused kernel: faster and lighter on memory than the explicit version above. CPU autocast lists
            # this kernel as a bf16 one and would turn the float32 inputs made above back into bf16 (the slow
            # backward again), so it is switched off around the call.
            upcast = q.dtype != dtype
            with torch.autocast("cpu", enabled=False) if upcast else contextlib.nullcontext():
                y = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0.0, is_causal=True,
                ).to(dtype)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, nh, T, hs) -> (B, T, nh, hs) -> (B, T, C)

        y = self.resid_dropout(self.c_proj(y))
        return y, att


class MLP(nn.Module):
    """Per-position feed-forward network: widen 4x, GELU, project back. Where most parameters live."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c_fc(x)  # (B, T, C) -> (B, T, 4C)
        x = self.gelu(x)
        x = self.c_proj(x)  # (B, T, 4C) -> (B, T, C)
        return self.dropout(x)


class Block(nn.Module):
    """One transformer layer: attention (positions talk to each other), then MLP (each position thinks alone).

    Pre-norm (normalise *before* each sublayer, add the result back) keeps a clean residual path from input to
    output, which is what lets deeper stacks train without careful warm-up (Xiong et al. 2020).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False, cache: LayerCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, att = self.attn(self.ln_1(x), return_attention=return_attention, cache=cache)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, att


@dataclass
class GPTConfig:
    """The model's shape. Defaults are CPU-sized: small enough to train in a minute on a laptop."""

    block_size: int = 64  # context length: how many tokens the model sees at once
    vocab_size: int = 65  # set from the tokenizer (65 for tiny Shakespeare, character level)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0  # 0 for short runs: with little training there is little overfitting to prevent
    bias: bool = False  # False: a bit faster, no worse (nanoGPT)
    # options (module docstring); off by default, the plain nanoGPT model
    qk_norm: bool = False  # RMS-normalise queries and keys per head before attention
    rope: bool = False  # rotary position embeddings on queries and keys (the learned positions stay as well)
    vocab_multiple: int | None = None  # the token table's rows rounded up to a multiple of this (None: not padded;
    # the trainer picks 64 on a GPU, engine.train.config.TrainConfig.model_config)

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the token table: vocab_size rounded up to `vocab_multiple` (GPU matmuls like multiples of 64).

        >>> GPTConfig(vocab_size=65).padded_vocab_size, GPTConfig(vocab_size=65, vocab_multiple=64).padded_vocab_size
        (65, 128)
        """
        m = max(1, self.vocab_multiple or 1)
        return -(-self.vocab_size // m) * m

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """From a saved model config (a checkpoint's "model_config"), ignoring keys this version does not know; one
        that turned on a dropped option is refused (`refuse_dropped`).

        >>> GPTConfig.from_dict({"n_layer": 2, "mlp_act": "gelu", "unknown": 1}).n_layer
        2
        """
        refuse_dropped(data, DROPPED_OPTIONS)
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


# Model options measured and dropped (docs/training-notes.md), each with the value that meant "off": saved configs
# from when they existed hold them. (zero_init_proj is not listed: it only set the initial weights.)
DROPPED_OPTIONS: dict[str, Any] = {"mlp_act": "gelu", "logit_softcap": 0.0, "attn_scale": 0.0}


def refuse_dropped(data: dict[str, Any], dropped: dict[str, Any]) -> None:
    """ValueError if the saved config `data` turned on an option of `dropped` (name -> its "off" value): ignoring
    it would rebuild something other than what was trained."""
    used = [f"{k}={data[k]!r}" for k, off in dropped.items() if data.get(k, off) != off]
    if used:
        raise ValueError(f"This run used {', '.join(used)}, an option measured and dropped (docs/training-notes.md): "
                         "this version cannot rebuild it. Use the commit it was trained with, or train it again.")


class GPT(nn.Module):
    """Token embedding + position embedding -> n_layer Blocks -> final norm -> logits over the vocabulary."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.vocab_size is not None and config.block_size is not None
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.padded_vocab_size, config.n_embd),  # token id -> vector
                wpe=nn.Embedding(config.block_size, config.n_embd),  # position -> vector
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = Head(config.n_embd, config.padded_vocab_size, config.vocab_size)
        # Weight tying: reading a token in and writing it out use the same matrix (Press & Wolf 2017).
        # Fewer parameters, and similar tokens end up close in both roles.
        self.transformer.wte.weight = self.lm_head.weight

        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream: with n_layer blocks
        # each adding to it, scale by 1/sqrt(2 * n_layer) so the stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters. By default the position embeddings are left out, as nanoGPT does (the token
        embedding is counted once: it is the same matrix as the output head)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, return_attention: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """Logits for every position, and the mean cross-entropy loss if `targets` are given.

        With `return_attention=True` also returns one (B, n_head, T, T) attention tensor per layer
        (computed with an explicit masked softmax, a little slower than the fused kernel). `last_only`: logits
        (B, 1, V) for the last position alone, all that choosing the next token needs (no loss then).
        """
        B, T = idx.size()
        assert T <= self.config.block_size, f"sequence of length {T} exceeds block_size {self.config.block_size}"
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)  # (T,)

        tok_emb = self.transformer.wte(idx)  # (B, T) -> (B, T, C)
        pos_emb = self.transformer.wpe(pos)  # (T,) -> (T, C), broadcast over the batch
        x = self.transformer.drop(tok_emb + pos_emb)  # (B, T, C)
        attentions: list[torch.Tensor] = []
        for block in self.transformer.h:
            x, att = block(x, return_attention=return_attention)
            if att is not None:
                attentions.append(att)
        if last_only:
            x = x[:, -1:, :]  # (B, T, C) -> (B, 1, C)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, C) -> (B, T, V)

        loss = None
        if targets is not None and not last_only:
            # cross_entropy wants (N, V) scores and (N,) targets: flatten batch and time together
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1))  # (B*T, V), (B*T,)
        if return_attention:
            return logits, loss, attentions
        return logits, loss

    @torch.no_grad()
    def forward_cached(self, idx: torch.Tensor, cache: KVCache, last_only: bool = False) -> torch.Tensor:
        """Logits (B, T, V) for the new tokens `idx` (B, T) that follow the `cache.length` positions in `cache`,
        which is extended with them. Same numbers as `forward` on the whole sequence (up to float rounding);
        the sequence so far must fit in block_size (the caller starts a fresh cache on a cropped context).
        `last_only`: logits (B, 1, V) of the last new position alone (the head skipped for the rest).
        """
        B, T = idx.size()
        L = cache.length
        assert L + T <= self.config.block_size, f"sequence of length {L + T} exceeds block_size {self.config.block_size}"
        pos = torch.arange(L, L + T, dtype=torch.long, device=idx.device)  # (T,): positions L .. L+T-1
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block, layer_cache in zip(self.transformer.h, cache.layers, strict=True):
            x, _ = block(x, cache=layer_cache)
        if last_only:
            x = x[:, -1:, :]  # (B, T, C) -> (B, 1, C)
        return self.lm_head(self.transformer.ln_f(x))  # (B, T, C) -> (B, T, V)

    @torch.inference_mode()
    def generate(
        self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Extend `idx` (B, T) by `max_new_tokens` sampled tokens, one at a time, feeding each back in.

        `temperature` < 1 sharpens the distribution (safer, more repetitive), > 1 flattens it (wilder).
        `top_k` keeps only the k likeliest tokens before sampling. Pass a `generator` for repeatable samples.
        Each new token costs one position's work: a key-value cache over the window the model reads
        (`generation_window`), rebuilt when the window drops its oldest quarter, and logits for the last position only.
        """
        was_training = self.training
        self.eval()
        cache, pending = None, idx
        for _ in range(max_new_tokens):
            window = generation_window(idx.size(1), self.config.block_size)
            if cache is None or cache.length + pending.size(1) != window:
                # the window dropped its oldest tokens: their positions moved, so read the window again
                cache, pending = KVCache(self.config.n_layer), idx[:, -window:]
            logits = self.forward_cached(pending, cache, last_only=True)  # (B, 1, V)
            logits = logits[:, -1, :].float() / max(temperature, 1e-6)  # (B, V)
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))  # (B, k)
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)  # (B, V)
            idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)  # (B, T) -> (B, T+1)
            pending = idx_next
        if was_training:
            self.train()
        return idx


class Head(nn.Linear):
    """The output layer: one score per token. With a padded table (`GPTConfig.vocab_multiple`) it computes the
    padded rows too, for the GPU's fast matmul shapes, but returns only the real vocabulary's `vocab_size` columns,
    so no caller ever sees a score for a token that does not exist."""

    def __init__(self, n_embd: int, rows: int, vocab_size: int):
        super().__init__(n_embd, rows, bias=False)
        self.vocab_size = vocab_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)  # (..., C) -> (..., padded V)
        return logits if logits.size(-1) == self.vocab_size else logits[..., : self.vocab_size]  # (..., V)


def attention_maps(model: GPT, idx: torch.Tensor) -> list[list[list[list[float]]]]:
    """Show-me function for the UI: attention weights for one sequence as plain nested lists.

    Returns [layer][head][query position][key position] -> weight; each row sums to 1 and is zero above the
    diagonal (a position never attends to the future). `idx` is (1, T) or (T,).
    """
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)  # (T,) -> (1, T)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, _, atts = model(idx, return_attention=True)
    if was_training:
        model.train()
    return [att[0].float().cpu().tolist() for att in atts]  # per layer (nh, T, T)
