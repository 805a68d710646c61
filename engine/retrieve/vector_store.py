"""Retrieve: an embedded vector store. Chunks' vectors go in; a question's vector comes back with the k chunks
whose vectors point most nearly the same way (cosine similarity).

The store is FAISS (`faiss-cpu`), in process, no server: an exact `IndexFlatIP` (inner product) over unit-length
vectors, so the inner product *is* the cosine. Exact rather than approximate (IVF, HNSW): a course's worth of text
is a few thousand chunks, few enough to compare the question with every one, so the learner sees the true top k.
Why FAISS and not sqlite-vec or LanceDB: docs/dependencies.md. On disk a store is `<key>.faiss` (the vectors) and
`<key>.json` (the chunks, in the same order) in the caller's folder, both written to a temporary name and renamed,
so a crash never leaves half a store under the real name.

>>> s = VectorStore(2)
>>> s.add(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -3.0]]), [_c("east"), _c("north-east"), _c("south")])
>>> [(c.text, round(score, 3)) for c, score in s.search(torch.tensor([2.0, 0.1]), k=2)]
[('east', 0.999), ('north-east', 0.742)]
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import faiss
import numpy as np
import torch
import torch.nn.functional as F

from engine.files import write_atomically, write_text
from engine.retrieve.chunking import Chunk

# FAISS's thread count is deliberately left alone: FAISS and torch share one OpenMP runtime, so
# `faiss.omp_set_num_threads` would change torch's thread count for the whole process. A one-question search
# over a flat index runs on one thread anyway (FAISS parallelises over questions).


class VectorStore:
    """Vectors (N, dim) and their chunks, searched by cosine similarity. Vectors are normalised on the way in,
    and so are queries, so hand-made vectors of any length work. `model` names what made the vectors (saved with
    them, so vectors from another model are never mixed in)."""

    def __init__(self, dim: int, model: str = ""):
        self.dim = dim
        self.model = model
        self.index = faiss.IndexFlatIP(dim)
        self.chunks: list[Chunk] = []

    def __len__(self) -> int:
        return len(self.chunks)

    def add(self, vectors: torch.Tensor, chunks: list[Chunk]) -> None:
        """Add vectors (N, dim), one per chunk, in the same order."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or vectors.shape[0] != len(chunks):
            raise ValueError(f"need ({len(chunks)}, {self.dim}) vectors for {len(chunks)} chunks, "
                             f"got {tuple(vectors.shape)}")
        if len(chunks):
            self.index.add(_unit(vectors))
        self.chunks.extend(chunks)

    def search(self, query: torch.Tensor, k: int = 5) -> list[tuple[Chunk, float]]:
        """The k chunks most similar to `query` (dim,), best first, with their cosine similarity in [-1, 1]."""
        k = min(k, len(self.chunks))
        if k <= 0:
            return []
        scores, ids = self.index.search(_unit(query.reshape(1, -1)), k)  # (1, k) each
        return [(self.chunks[i], float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def vectors(self) -> torch.Tensor:
        """Every stored vector (N, dim), unit length, in chunk order (read back from the FAISS index)."""
        if not self.chunks:
            return torch.zeros(0, self.dim)
        return torch.from_numpy(self.index.reconstruct_n(0, self.index.ntotal))

    def save(self, folder: Path, key: str) -> None:
        """Write `<key>.faiss` and `<key>.json` in `folder` (created if needed), each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"dim": self.dim, "model": self.model, "chunks": [dataclasses.asdict(c) for c in self.chunks]}
        write_text(folder / f"{key}.json", json.dumps(meta))
        write_atomically(folder / f"{key}.faiss", lambda tmp: faiss.write_index(self.index, str(tmp)))

    @classmethod
    def load(cls, folder: Path, key: str) -> VectorStore:
        """The store saved under `key` in `folder`; FileNotFoundError if it is not there, ValueError if its two
        files disagree (then the caller rebuilds it)."""
        folder = Path(folder)
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        index_file = folder / f"{key}.faiss"
        if not index_file.is_file():
            raise FileNotFoundError(index_file)
        store = cls(int(meta["dim"]), str(meta.get("model", "")))
        store.index = faiss.read_index(str(index_file))
        store.chunks = [Chunk(**c) for c in meta["chunks"]]
        if store.index.ntotal != len(store.chunks) or store.index.d != store.dim:
            raise ValueError(f"store {key!r} in {folder} is inconsistent: {store.index.ntotal} vectors, "
                             f"{len(store.chunks)} chunks")
        return store

    @staticmethod
    def exists(folder: Path, key: str) -> bool:
        return (Path(folder) / f"{key}.faiss").is_file() and (Path(folder) / f"{key}.json").is_file()


def _unit(vectors: torch.Tensor) -> np.ndarray:
    """(N, dim) -> the same rows scaled to length 1, as the contiguous float32 array FAISS wants."""
    return np.ascontiguousarray(F.normalize(vectors.detach().float(), dim=-1).cpu().numpy(), dtype=np.float32)


def _c(text: str) -> Chunk:
    """A one-chunk document, for examples."""
    return Chunk(text, text, 0, 0, len(text), text)
