"""Inside the model (lesson 6): what a trained GPT does with one prompt, as plain data for the UI to draw.

Four show-me functions, each for one question a learner asks:
- `attention_view`: where each position looks, per layer and head ([layer][head][query][key] weights; causal);
- `logit_lens`: what each layer would predict if it were the last (nostalgebraist 2020, "interpreting GPT: the
  logit lens": the final LayerNorm and the tied output head applied to each block's residual stream);
- `parameter_breakdown`: where the parameters live (embeddings, attention, MLP, norms; the output head is tied to
  the token embeddings, Press & Wolf 2017, so it adds none), counted from the module's own `named_parameters`;
- `forward_stages`: one forward pass stage by stage with real shapes (tokens, embeddings, each block, logits,
  probabilities), following engine/transform/model.py's `GPT.forward` line by line.

A prompt longer than block_size is cut to its last block_size tokens, and every result says how many were cut.
Token text is display text (whitespace made visible, see `engine.look_inside.sampling.display_text`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.look_inside.sampling import display_text, encode_prompt, entropy, eval_mode
from engine.transform.model import GPT, attention_maps
from engine.transform.tokenization import Tokenizer


def _prompt_tensor(model: GPT, tokenizer: Tokenizer, prompt: str) -> tuple[torch.Tensor, list[str], int]:
    """(1, T) ids on the model's device, their display texts, and how many tokens were cut from the front."""
    ids, dropped = encode_prompt(tokenizer, prompt, model.config.block_size)
    idx = torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device)  # (1, T)
    return idx, [display_text(tokenizer, i) for i in ids], dropped


# --- attention ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionView:
    """Attention weights for one prompt. Both axes are `tokens`: weights[l][h][q][k] is how much position q
    takes from position k in head h of layer l. Each row sums to 1; above the diagonal is 0 (no peeking ahead)."""

    tokens: list[str]
    dropped: int  # tokens cut from the front (the model sees block_size at most)
    n_layer: int
    n_head: int
    weights: list[list[list[list[float]]]]  # [layer][head][query][key]


def attention_view(model: GPT, tokenizer: Tokenizer, prompt: str) -> AttentionView:
    """Show-me function: every layer's and head's attention weights over the prompt's tokens."""
    idx, tokens, dropped = _prompt_tensor(model, tokenizer, prompt)
    with eval_mode(model):  # one thread (see eval_mode); attention_maps restores the mode itself too
        weights = attention_maps(model, idx)
    return AttentionView(tokens, dropped, model.config.n_layer, model.config.n_head, weights)


# --- the residual stream, layer by layer ----------------------------------------------------------------------


def residual_stream(model: GPT, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """GPT.forward up to the final norm, keeping what it passes by: token embeddings (1, T, C), position
    embeddings (T, C) and each block's output (1, T, C). Call under `eval_mode`."""
    T = idx.size(1)
    pos = torch.arange(0, T, dtype=torch.long, device=idx.device)  # (T,)
    tok_emb = model.transformer.wte(idx)  # (1, T) -> (1, T, C)
    pos_emb = model.transformer.wpe(pos)  # (T,) -> (T, C)
    x = model.transformer.drop(tok_emb + pos_emb)  # (1, T, C)
    outputs = []
    for block in model.transformer.h:
        x, _ = block(x)  # (1, T, C)
        outputs.append(x)
    return tok_emb, pos_emb, outputs


@dataclass(frozen=True)
class LensLayer:
    """What the residual stream after one layer predicts for the next token."""

    layer: int  # 0 = the embeddings alone, 1..n_layer = after that block
    name: str
    top: list[tuple[int, str, float]]  # (id, display text, probability), likeliest first


@dataclass(frozen=True)
class LogitLens:
    """The logit lens at the prompt's last position: one row per layer, embeddings first."""

    tokens: list[str]
    dropped: int
    layers: list[LensLayer]


def _top(tokenizer: Tokenizer, probs: torch.Tensor, top: int) -> list[tuple[int, str, float]]:
    order = torch.sort(probs, descending=True, stable=True).indices[:top].tolist()  # ties: lower id first
    return [(i, display_text(tokenizer, i), float(probs[i])) for i in order]


def logit_lens(model: GPT, tokenizer: Tokenizer, prompt: str, top: int = 5) -> LogitLens:
    """Show-me function: the top tokens each layer would predict after the prompt, if it were the last layer.

    The final layer's row is the model's real prediction.
    """
    idx, tokens, dropped = _prompt_tensor(model, tokenizer, prompt)
    with eval_mode(model):
        tok_emb, pos_emb, outputs = residual_stream(model, idx)
        streams = [tok_emb + pos_emb, *outputs]  # n_layer + 1 of (1, T, C)
        rows = []
        for layer, x in enumerate(streams):
            logits = model.lm_head(model.transformer.ln_f(x[:, -1]))  # (1, C) -> (1, V): last position only
            probs = F.softmax(logits[0].float(), dim=-1).cpu()  # (V,)
            name = "embeddings" if layer == 0 else f"after block {layer}"
            rows.append(LensLayer(layer, name, _top(tokenizer, probs, top)))
    return LogitLens(tokens, dropped, rows)


# --- parameters -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamPart:
    """One part of the model and how many parameters it holds."""

    name: str
    count: int
    note: str


PARTS = [  # (name, does a parameter name belong to it, note), in the order data flows
    ("token embeddings", lambda n: n.startswith("transformer.wte."), "one vector of n_embd per vocabulary token"),
    ("position embeddings", lambda n: n.startswith("transformer.wpe."), "one vector of n_embd per position"),
    ("attention", lambda n: ".attn." in n, "query/key/value and output projections, every layer"),
    ("MLP", lambda n: ".mlp." in n, "widen 4x and project back, every layer"),
    ("norms", lambda n: ".ln_" in n, "LayerNorm scales (and biases), every layer and the final one"),
    ("output head", lambda n: n.startswith("lm_head."), ""),
]


def parameter_breakdown(model: GPT) -> list[ParamPart]:
    """Show-me function: the parameter count by part, from the model's own `named_parameters`.

    The parts sum to `sum(p.numel() for p in model.parameters())`: a tied matrix is counted once, under the
    token embeddings, and the output head shows 0 with a note saying why.

    >>> from engine.transform.model import GPTConfig
    >>> parts = parameter_breakdown(GPT(GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=4)))
    >>> [(p.name, p.count) for p in parts]
    [('token embeddings', 40), ('position embeddings', 32), ('attention', 64), ('MLP', 128), ('norms', 12), ('output head', 0)]
    """
    counts = dict.fromkeys((name for name, _, _ in PARTS), 0)
    for pname, p in model.named_parameters():  # yields a shared tensor once, under its first name
        part = next((name for name, belongs, _ in PARTS if belongs(pname)), None)
        if part is None:
            raise ValueError(f"parameter {pname!r} belongs to no known part of the model")
        counts[part] += p.numel()
    tied = model.lm_head.weight is model.transformer.wte.weight
    head_note = (
        "tied to the token embeddings: the same matrix reads tokens in and scores them out, so it adds nothing"
        if tied else "scores every vocabulary token from the final vector"
    )
    return [ParamPart(name, counts[name], head_note if name == "output head" else note) for name, _, note in PARTS]


# --- one forward pass, stage by stage -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage of the forward pass: its real tensor shape and a few numbers that summarise it."""

    name: str
    shape: tuple[int, ...]
    summary: dict[str, float]
    note: str


def _vectors(x: torch.Tensor) -> dict[str, float]:
    """Summary of (T, C) vectors: the mean and last position's length (L2 norm), and the value spread."""
    norms = x.float().norm(dim=-1)  # (T,)
    return {"mean norm": float(norms.mean()), "last norm": float(norms[-1]), "std": float(x.float().std())}


def forward_stages(model: GPT, tokenizer: Tokenizer, prompt: str) -> list[Stage]:
    """Show-me function: the prompt through the model, one stage at a time (batch of one, so no B axis)."""
    idx, tokens, _ = _prompt_tensor(model, tokenizer, prompt)
    with eval_mode(model):
        tok_emb, pos_emb, outputs = residual_stream(model, idx)
        final = model.transformer.ln_f(outputs[-1] if outputs else tok_emb + pos_emb)  # (1, T, C)
        logits = model.lm_head(final)  # (1, T, V)
    probs = F.softmax(logits[0, -1].float(), dim=-1).cpu()  # (V,)
    top = int(probs.argmax())
    T = idx.size(1)
    stages = [
        Stage("tokens", (T,), {"count": float(T)}, "the prompt as ids: " + "".join(tokens)),
        Stage("token embeddings", tuple(tok_emb[0].shape), _vectors(tok_emb[0]), "each id looks up its row of wte"),
        Stage("position embeddings", tuple(pos_emb.shape), _vectors(pos_emb), "each position looks up its row of wpe"),
        Stage("embeddings", tuple(tok_emb[0].shape), _vectors(tok_emb[0] + pos_emb), "token + position, added"),
    ]
    for i, x in enumerate(outputs, start=1):
        stages.append(Stage(f"block {i} output", tuple(x[0].shape), _vectors(x[0]), "attention, then MLP, added on"))
    stages += [
        Stage("final norm", tuple(final[0].shape), _vectors(final[0]), "LayerNorm before the output head"),
        Stage("logits", tuple(logits[0].shape), {"min": float(logits.min()), "max": float(logits.max())},
              "one score per vocabulary token at every position"),
        Stage("probabilities (last position)", tuple(probs.shape),
              {"top probability": float(probs[top]), "entropy (nats)": entropy(probs), "sum": float(probs.sum())},
              f"softmax of the last row; likeliest next token: {display_text(tokenizer, top)}"),
    ]
    return stages
