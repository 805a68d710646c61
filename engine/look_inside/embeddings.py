"""Inside the model, part 1: the token-embedding table as a map (lesson 5, "Embeddings: tokens as vectors").

A GPT's first layer is a table `transformer.wte.weight` of shape (V, C): one learned vector per token (tied with
the output layer, as in GPT-2 and nanoGPT). This module turns it into things a learner can look at:
`project_table` / `project_model` (every token as a point in 2-D or 3-D by principal component analysis, Pearson
1901, Hotelling 1933: an SVD of the centred table in float64, with each axis's share of the variance),
`run_projection` (the same map for every snapshot of a run's timeline, engine.load.checkpoint, on axes that stay
put, so scrubbing shows tokens moving because the model moved them; cached), `nearest_neighbours` (cosine
similarity, at any snapshot) and `table_size` (V x C numbers, bytes at fp32, the share of the model).

Why the axes are fitted once per run, on its latest snapshot, and how their signs are fixed: docs/architecture.md,
"The embedding map's axes". Token labels and groups (vowels, word pieces ...) live in engine.look_inside.groups.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from engine.device import single_thread
from engine.load import checkpoint
from engine.look_inside.groups import GROUP_NAMES, token_group, token_label
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import Tokenizer, tokenizer_from_dict

WTE_KEY = "transformer.wte.weight"  # the token-embedding table in a GPT's state dict
@dataclass(frozen=True)
class Axes:
    """Principal axes fitted on one table: project any table of the same width onto them with `project`."""

    center: torch.Tensor  # (C,) the fitted table's mean vector
    components: torch.Tensor  # (k, C) orthonormal rows, strongest axis first, signs fixed


@dataclass(frozen=True)
class TokenPoint:
    """One token on the map."""

    id: int
    label: str  # readable: "␣" for a space, "⏎" for a newline (engine.look_inside.groups.token_label)
    group: str  # one of engine.look_inside.groups.GROUP_NAMES
    x: float
    y: float
    z: float | None  # None on a 2-D map


@dataclass(frozen=True)
class Projection:
    """The map of one table: its points, and the fraction of the table's variance each axis shows."""

    step: int | None  # the snapshot's training step (None for a table that is not from a run)
    points: tuple[TokenPoint, ...]
    explained: tuple[float, ...]  # one per axis, each in [0, 1], summing to at most 1
    groups: tuple[str, ...]  # the groups present, in GROUP_NAMES order (for a legend)


@dataclass(frozen=True)
class RunProjection:
    """One map per timeline snapshot of a run, all on the axes fitted on `fit_step`. Cached and shared by every
    caller (see `run_projection`): read it, never modify it."""

    steps: tuple[int, ...]
    fit_step: int
    frames: dict[int, Projection]  # step -> its map
    bounds: tuple[tuple[float, float], ...]  # (low, high) per axis over every frame: fixed plot ranges

    def frame(self, step: int) -> Projection:
        return self.frames[step]


@dataclass(frozen=True)
class Neighbour:
    id: int
    label: str
    group: str
    similarity: float  # cosine similarity with the query token, in [-1, 1]


@dataclass(frozen=True)
class TableSize:
    """How big the token-embedding table is, for a model of a given shape."""

    vocab_size: int  # V: rows, one per token
    n_embd: int  # C: numbers per token
    numbers: int  # V x C
    bytes_fp32: int  # 4 bytes per number
    model_params: int  # every parameter of the model, the shared table counted once
    share: float  # numbers / model_params


# ---- principal axes ----------------------------------------------------------------------------------------


def fit_axes(table: torch.Tensor, dims: int = 3) -> Axes:
    """Principal axes of a (V, C) table: centre it, SVD, keep the `dims` strongest directions, fix their signs.

    >>> t = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    >>> fit_axes(t, dims=2).components.tolist()  # the long side first
    [[1.0, 0.0], [0.0, 1.0]]
    """
    x = table.detach().to(torch.float64)  # (V, C); float64: the same answer on every run and machine
    center = x.mean(dim=0)  # (C,)
    with single_thread():
        _, _, vh = torch.linalg.svd(x - center, full_matrices=False)  # vh: (min(V, C), C)
    comps = vh[:dims]  # (k, C), k <= dims
    if comps.shape[0] < dims:  # fewer tokens or dimensions than axes asked for: pad with empty axes
        comps = torch.cat([comps, torch.zeros(dims - comps.shape[0], x.shape[1], dtype=x.dtype)])
    scores = (x - center) @ comps.T  # (V, k)
    far = scores.abs().argmax(dim=0)  # (k,) the token furthest along each axis (first one on a tie)
    signs = torch.sign(scores[far, torch.arange(dims)])  # (k,)
    signs[signs == 0] = 1.0
    return Axes(center=center, components=comps * signs[:, None])


def project(table: torch.Tensor, axes: Axes) -> torch.Tensor:
    """(V, C) -> (V, k): each token's coordinates on the axes, measured from the axes' centre."""
    return (table.detach().to(torch.float64) - axes.center) @ axes.components.T


def explained_variance(table: torch.Tensor, axes: Axes) -> list[float]:
    """The fraction of the table's variance (around its own mean) that lies along each axis. Orthonormal axes
    never show more than all of it, so the fractions sum to at most 1; for the table the axes were fitted on,
    they are PCA's usual explained-variance ratios.

    >>> t = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> explained_variance(t, fit_axes(t, dims=2))
    [0.8, 0.2]
    """
    x = table.detach().to(torch.float64)
    centred = x - x.mean(dim=0)  # (V, C)
    total = centred.pow(2).sum()
    if total == 0:
        return [0.0] * axes.components.shape[0]
    along = (centred @ axes.components.T).pow(2).sum(dim=0)  # (k,)
    return [round(float(v), 6) for v in along / total]


# ---- the map of one table ----------------------------------------------------------------------------------


def token_texts(tokenizer: Tokenizer, vocab_size: int) -> list[str]:
    """Each row's token as text (readable BPE pieces: " the"); a row beyond the tokenizer's vocabulary is "#id"."""
    return [tokenizer.id_to_token(i) if i < tokenizer.vocab_size else f"#{i}" for i in range(vocab_size)]


def project_table(
    table: torch.Tensor, texts: list[str], axes: Axes | None = None, dims: int = 3, step: int | None = None
) -> Projection:
    """The map of a (V, C) table whose rows are the tokens `texts`: on `axes` if given, else on its own.

    >>> t = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> m = project_table(t, ["a", "b", " ", "7"], dims=2)
    >>> [(p.label, p.group, p.x, p.y) for p in m.points]
    [('a', 'vowel', 2.0, 0.0), ('b', 'consonant', -2.0, 0.0), ('␣', 'whitespace', 0.0, 1.0), ('7', 'digit', 0.0, -1.0)]
    >>> m.explained, m.groups
    ((0.8, 0.2), ('vowel', 'consonant', 'digit', 'whitespace'))
    """
    if dims not in (2, 3):
        raise ValueError(f"a map has 2 or 3 axes, not {dims}")
    if table.shape[0] != len(texts):
        raise ValueError(f"the table has {table.shape[0]} rows but {len(texts)} token texts were given")
    with single_thread():
        axes = axes or fit_axes(table, dims)
        coords = project(table, axes)[:, :dims] + 0.0  # (V, dims); + 0.0 turns -0.0 into 0.0
        explained = explained_variance(table, axes)[:dims]
    groups = [token_group(t) for t in texts]
    points = tuple(
        TokenPoint(i, token_label(text), group, float(c[0]), float(c[1]), float(c[2]) if dims == 3 else None)
        for i, (text, group, c) in enumerate(zip(texts, groups, coords.tolist(), strict=True))
    )
    present = set(groups)
    return Projection(
        step=step,
        points=points,
        explained=tuple(explained),
        groups=tuple(g for g in GROUP_NAMES if g in present),
    )


def embedding_table(model: GPT) -> torch.Tensor:
    """The model's token-embedding table, (V, C), detached, on the CPU."""
    return model.transformer.wte.weight.detach().cpu()


def project_model(model: GPT, tokenizer: Tokenizer, dims: int = 3, step: int | None = None) -> Projection:
    """The map of one model's token embeddings, on its own principal axes (a reference checkpoint, say)."""
    table = embedding_table(model)  # (V, C)
    return project_table(table, token_texts(tokenizer, table.shape[0]), dims=dims, step=step)


# ---- nearest neighbours ------------------------------------------------------------------------------------


def nearest_neighbours(table: torch.Tensor, texts: list[str], token_id: int, k: int = 5) -> list[Neighbour]:
    """The `k` tokens whose vectors point most nearly the same way as `token_id`'s (cosine similarity), itself
    excluded, most similar first (the lower id first on a tie).

    >>> t = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    >>> [(n.label, round(n.similarity, 3)) for n in nearest_neighbours(t, ["a", "b", "c", "d"], 0, k=2)]
    [('b', 0.994), ('c', 0.0)]
    """
    if not 0 <= token_id < table.shape[0]:
        raise ValueError(f"token id {token_id} is not in this table of {table.shape[0]} tokens")
    x = table.detach().to(torch.float64)  # (V, C)
    with single_thread():
        unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (V, C), each row of length 1 (or 0)
        sims = (unit @ unit[token_id]).tolist()  # (V,)
    order = sorted((i for i in range(len(sims)) if i != token_id), key=lambda i: (-round(sims[i], 12), i))
    return [Neighbour(i, token_label(texts[i]), token_group(texts[i]), sims[i]) for i in order[:k]]


# ---- a run's timeline, cached ------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _load_snapshot(path: str, mtime_ns: int, size: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """One snapshot's table (V, C) and tokenizer dict, read once per file version (the key holds its mtime and
    size, so a rewritten file is read again). Reads the state dict alone: no model is built. Callers share the
    cached tensor: never modify it."""
    snap = torch.load(path, map_location="cpu", weights_only=True)
    return snap["model"][WTE_KEY].to(torch.float64), snap["tokenizer"]


@lru_cache(maxsize=64)
def _snapshot_texts(path: str, mtime_ns: int, size: int) -> list[str]:
    """The token texts of one snapshot's tokenizer (rebuilding a BPE tokenizer takes a while: once per file)."""
    table, tok_dict = _load_snapshot(path, mtime_ns, size)
    return token_texts(tokenizer_from_dict(tok_dict), table.shape[0])


def _signature(run_dir: Path) -> tuple[tuple[int, str, int, int], ...]:
    """(step, path, mtime_ns, size) for each timeline snapshot: changes whenever the timeline does."""
    out = []
    for entry in checkpoint.list_timeline(run_dir):
        path = run_dir / checkpoint.TIMELINE / entry["file"]
        try:
            st = path.stat()
        except OSError:
            continue  # removed since the index was read: the next call sees the new index
        out.append((int(entry["step"]), str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


@lru_cache(maxsize=8)
def _run_projection(signature: tuple[tuple[int, str, int, int], ...], dims: int) -> RunProjection:
    tables = {step: _load_snapshot(path, mtime, size) for step, path, mtime, size in signature}
    fit_step = signature[-1][0]
    texts = list(_snapshot_texts(*signature[-1][1:]))  # the tokenizer is fixed for a run: the latest's
    latest, _ = tables[fit_step]
    axes = fit_axes(latest, dims)
    frames = {step: project_table(table, texts, axes, dims, step) for step, (table, _) in tables.items()}
    coords = [[getattr(p, a) for f in frames.values() for p in f.points] for a in "xyz"[:dims]]
    return RunProjection(
        steps=tuple(frames), fit_step=fit_step, frames=frames, bounds=tuple((min(c), max(c)) for c in coords)
    )


def run_projection(run_dir: Path | str, dims: int = 3) -> RunProjection:
    """The map at every timeline snapshot of a run, on axes fitted once on its latest snapshot (see the module
    docstring). Each snapshot file is read once, and the whole answer is cached until the timeline changes
    (a new snapshot, or one dropped), so calling this again while scrubbing costs a few file stats.
    Raises FileNotFoundError for a run without a timeline."""
    run_dir = Path(run_dir)
    signature = _signature(run_dir)
    if not signature:
        raise FileNotFoundError(f"{run_dir} has no timeline snapshots yet: nothing to map.")
    return _run_projection(signature, dims)


def clear_cache() -> None:
    """Forget every cached snapshot and map (the benchmark measures a cold start with it)."""
    _load_snapshot.cache_clear()
    _snapshot_texts.cache_clear()
    _run_projection.cache_clear()


def run_table(run_dir: Path | str, step: int) -> tuple[torch.Tensor, list[str]]:
    """A run's (V, C) table at a timeline step and its token texts, from the same cache as `run_projection`."""
    run_dir = Path(run_dir)
    for s, path, mtime, size in _signature(run_dir):
        if s == step:
            return _load_snapshot(path, mtime, size)[0], list(_snapshot_texts(path, mtime, size))
    held = [s for s, *_ in _signature(run_dir)]
    raise FileNotFoundError(f"{run_dir} has no timeline snapshot at step {step}; it holds steps {held}.")


def run_neighbours(run_dir: Path | str, step: int, token_id: int, k: int = 5) -> list[Neighbour]:
    """`nearest_neighbours` of a token in a run's table at one timeline step."""
    table, texts = run_table(run_dir, step)
    return nearest_neighbours(table, texts, token_id, k)


# ---- how big the table is ----------------------------------------------------------------------------------


def table_size(model_config: GPTConfig | dict[str, Any]) -> TableSize:
    """The token-embedding table's size for a model shape (a run's config.json "model", or a GPTConfig).
    The model is built on PyTorch's "meta" device to count its parameters: shapes only, no memory, no time.

    >>> s = table_size({"vocab_size": 65, "n_embd": 128, "n_layer": 3, "n_head": 4, "block_size": 64})
    >>> s.numbers, s.bytes_fp32, s.model_params, round(s.share, 3)
    (8320, 33280, 607232, 0.014)
    """
    if isinstance(model_config, GPTConfig):
        config = model_config
    else:  # a config.json may carry keys a newer or older GPTConfig lacks
        config = GPTConfig(**{k: v for k, v in model_config.items() if k in {f.name for f in fields(GPTConfig)}})
    with torch.device("meta"):
        params = sum(p.numel() for p in GPT(config).parameters())  # the tied table is one parameter, counted once
    numbers = config.vocab_size * config.n_embd
    return TableSize(config.vocab_size, config.n_embd, numbers, numbers * 4, params, numbers / params)


def run_table_size(run_dir: Path | str) -> TableSize:
    """`table_size` of a run, from the model shape its config.json records."""
    config = json.loads((Path(run_dir) / checkpoint.CONFIG).read_text())
    return table_size(config["model"])


def as_dict(obj: Any) -> dict[str, Any]:
    """Any of this module's results as plain dicts and lists (for JSON, or a dataframe)."""
    return asdict(obj)
