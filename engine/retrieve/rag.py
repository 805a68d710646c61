"""Retrieve: retrieval-augmented generation's first half. Index documents once, then for each question find the
passages that answer it, two ways side by side, and assemble them into a prompt a model can answer from.

    documents --chunking--> chunks --embedder--> vectors --> vector store (FAISS, saved under a content hash)
                                   \\--> BM25 keyword index (rebuilt in memory, a fraction of a second)
    question --> semantic top k (cosine) + keyword top k (BM25) --> RetrievalResult --> assemble_prompt

The saved index is named by a hash of everything that shapes it: the model, the chunk knobs, and every
document's id, name and text. Change any of them (a lesson edited, an upload added, the chunk size moved) and the
name changes, so the next `build_index` builds a new store; the same inputs load the saved store in a fraction
of a second. A new store reuses the vectors of every chunk whose text the folder's other stores already hold, so
adding one upload embeds only the upload's chunks. Only the few most recent stores are kept in the folder.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine import device
from engine.retrieve import embedder
from engine.retrieve.chunking import (
    DEFAULT_OVERLAP,
    DEFAULT_SIZE,
    Chunk,
    Document,
    check_knobs,
    chunk_documents,
)
from engine.retrieve.keyword_search import KeywordIndex
from engine.retrieve.vector_store import VectorStore

INDEX_VERSION = 1  # bump when the way an index is built changes, so old saved stores are not reused
KEEP_STORES = 3  # saved stores kept in a folder: the current one and a couple to switch back to quickly
_MODEL = f"{embedder.MODEL_NAME} (index v{INDEX_VERSION})"  # what a store's vectors came from
_STORE_FILE = re.compile(r"rag-[0-9a-f]{20}\.(faiss|json)")

PROMPT_HEAD = ("Answer the question using only the numbered passages below. Cite the passages you use by "
               "number, like [1].\nIf the passages do not contain the answer, say that they do not.")


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its rank (1 = best) and its score (cosine similarity for the semantic retriever,
    BM25 for the keyword one: the two scales are not comparable, only the orders are)."""

    rank: int
    chunk: Chunk
    score: float


@dataclass(frozen=True)
class RetrievalResult:
    """Both retrievers' answers to one question, for a page to draw side by side."""

    question: str
    k: int
    semantic: list[Hit]
    keyword: list[Hit]
    both: list[tuple[str, int]]  # (doc_id, position) of the chunks both retrievers returned, in semantic order
    semantic_ms: float  # embedding the question and searching the vectors
    keyword_ms: float


@dataclass
class RetrievalIndex:
    """Everything `retrieve` needs. `built` says whether this call made a new store (True) or loaded a saved one
    (False), `embedded` how many chunks it had to embed (the others' vectors were reused), `seconds` how long it
    took."""

    key: str
    size: int
    overlap: int
    documents: int
    chunks: list[Chunk]
    store: VectorStore
    keyword: KeywordIndex
    built: bool
    embedded: int
    seconds: float


def index_key(documents: Sequence[Document], size: int, overlap: int) -> str:
    """The name of the saved store for these documents and knobs: any change to them changes it.

    >>> a = index_key([Document("x", "X", "text")], 600, 100)
    >>> a, a == index_key([Document("x", "X", "text!")], 600, 100), a == index_key([Document("x", "X", "text")], 500, 100)
    ('rag-...', False, False)
    """
    h = hashlib.sha256(f"v{INDEX_VERSION}|{embedder.MODEL_NAME}|size={size}|overlap={overlap}".encode())
    for doc in documents:
        for part in (doc.id, doc.source, doc.text):
            data = part.encode("utf-8")
            h.update(len(data).to_bytes(8, "little"))  # length-prefixed: ("ab", "c") differs from ("a", "bc")
            h.update(data)
    return f"rag-{h.hexdigest()[:20]}"


def build_index(documents: Sequence[Document], folder: Path, size: int = DEFAULT_SIZE,
                overlap: int = DEFAULT_OVERLAP, threads: int | None = 1) -> RetrievalIndex:
    """Chunk, embed and store `documents` in `folder`, or load the store saved there for exactly these documents
    and knobs. A saved store that cannot be read (a crash, another version) is rebuilt.

    Embedding runs on `threads` torch threads (None: the process's count). One by default: on two cores shared
    with other work, two threads spend their time waiting for each other and index more slowly than one
    (docs/benchmarks.md, Retrieval)."""
    check_knobs(size, overlap)
    t0 = time.perf_counter()
    key = index_key(documents, size, overlap)
    folder = Path(folder)
    store = None
    if VectorStore.exists(folder, key):
        try:
            store = VectorStore.load(folder, key)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            store = None
    built, embedded = store is None, 0
    if store is None:
        chunks = chunk_documents(list(documents), size, overlap)
        known = _saved_vectors(folder, key) if folder.is_dir() else {}
        todo = list(dict.fromkeys(c.text for c in chunks if c.text not in known))
        known.update(zip(todo, embedder.embed(todo, threads=threads), strict=True))  # each (384,)
        embedded = len(todo)
        store = VectorStore(embedder.DIM, _MODEL)
        if chunks:
            store.add(torch.stack([known[c.text] for c in chunks]), chunks)  # (N, 384)
        store.save(folder, key)
        _prune(folder, key)
    return RetrievalIndex(key, size, overlap, len(documents), store.chunks, store, KeywordIndex(store.chunks),
                          built, embedded, time.perf_counter() - t0)


def retrieve(question: str, k: int = 5, *, index: RetrievalIndex) -> RetrievalResult:
    """The top k chunks of each retriever for `question`, their scores, and which chunks both found.

    The question is embedded on one thread (`device.single_thread`): a dozen tokens are too little work to share,
    and on two cores busy with a training run two threads made the query many times slower (docs/benchmarks.md,
    "Figures behind choices in the code")."""
    t0 = time.perf_counter()
    with device.single_thread():
        query = embedder.embed([question])[0]  # (384,)
    semantic = [Hit(r, c, s) for r, (c, s) in enumerate(index.store.search(query, k), start=1)]
    t1 = time.perf_counter()
    keyword = [Hit(r, c, s) for r, (c, s) in enumerate(index.keyword.search(question, k), start=1)]
    t2 = time.perf_counter()
    found_by_keyword = {(h.chunk.doc_id, h.chunk.position) for h in keyword}
    both = [(h.chunk.doc_id, h.chunk.position) for h in semantic
            if (h.chunk.doc_id, h.chunk.position) in found_by_keyword]
    return RetrievalResult(question, k, semantic, keyword, both, 1000 * (t1 - t0), 1000 * (t2 - t1))


def assemble_prompt(question: str, chunks: Sequence[Chunk | Hit]) -> str:
    """The prompt a model answers from: the instruction, the passages numbered [1], [2], ... each under its
    source, then the question. Passages keep the order given (best first).

    >>> prompt = assemble_prompt("What is BPE?", [Chunk("d", "Lesson 4, Merges", 0, 0, 9, "BPE merges")])
    >>> print(prompt)
    Answer the question using only the numbered passages below. Cite the passages you use by number, like [1].
    If the passages do not contain the answer, say that they do not.
    <BLANKLINE>
    [1] Lesson 4, Merges
    BPE merges
    <BLANKLINE>
    Question: What is BPE?
    Answer:
    """
    parts = [PROMPT_HEAD]
    for n, item in enumerate(chunks, start=1):
        chunk = item.chunk if isinstance(item, Hit) else item
        parts.append(f"[{n}] {chunk.source}\n{chunk.text.strip()}")
    parts.append(f"Question: {question.strip()}\nAnswer:")
    return "\n\n".join(parts)


def _saved_vectors(folder: Path, current: str) -> dict[str, torch.Tensor]:
    """Chunk text -> its vector (384,), from the other stores saved in `folder` (unreadable ones are skipped).
    Same model, same text, same vector; a store made by another model (or another INDEX_VERSION) is not used."""
    known: dict[str, torch.Tensor] = {}
    for path in folder.glob("rag-*.faiss"):
        if not _STORE_FILE.fullmatch(path.name) or path.stem == current:
            continue
        try:
            old = VectorStore.load(folder, path.stem)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            continue
        if old.model == _MODEL and old.dim == embedder.DIM:
            known.update(zip((c.text for c in old.chunks), old.vectors(), strict=True))
    return known


def _prune(folder: Path, current: str) -> None:
    """Keep the KEEP_STORES most recently written stores in `folder` (never `current`); touch nothing else."""
    stores: dict[str, float] = {}
    for path in folder.iterdir():
        if _STORE_FILE.fullmatch(path.name) and path.stem != current:
            stores[path.stem] = max(stores.get(path.stem, 0.0), path.stat().st_mtime)
    for stem in sorted(stores, key=stores.get, reverse=True)[KEEP_STORES - 1:]:
        for suffix in (".faiss", ".json"):
            (folder / f"{stem}{suffix}").unlink(missing_ok=True)
