"""The vector store (FAISS), the BM25 baseline, the index that rebuilds when its inputs change, retrieve and
the prompt. The store and BM25 run on hand-made vectors and texts; the index tests use a stand-in embedder
(a bag of hashed words) so they are quick, and one test runs the real model end to end."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from engine.retrieve import embedder, rag
from engine.retrieve.chunking import Chunk, Document
from engine.retrieve.keyword_search import KeywordIndex
from engine.retrieve.vector_store import VectorStore


def _chunk(text: str, doc: str | None = None) -> Chunk:
    return Chunk(doc or text, f"source of {doc or text}", 0, 0, len(text), text)


def test_store_ranks_by_cosine_not_by_length() -> None:
    store = VectorStore(3)
    vectors = torch.tensor([[10.0, 0, 0], [1, 1, 0], [0, 0, 1], [-1, 0, 0]])  # (4, 3)
    store.add(vectors, [_chunk(t) for t in ("x", "xy", "z", "-x")])
    hits = store.search(torch.tensor([0.5, 0.1, 0.0]), k=4)
    assert [c.text for c, _ in hits] == ["x", "xy", "z", "-x"]
    expected = torch.nn.functional.cosine_similarity(vectors, torch.tensor([[0.5, 0.1, 0.0]]))
    assert [round(s, 5) for _, s in hits] == [round(float(v), 5) for v in expected]
    assert len(store.search(torch.tensor([1.0, 0, 0]), k=10)) == 4, "k larger than the store"
    assert VectorStore(3).search(torch.tensor([1.0, 0, 0])) == []
    with pytest.raises(ValueError):
        store.add(torch.zeros(2, 3), [_chunk("one")])


def test_store_round_trip_through_its_files(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    vectors = torch.randn(50, 8, generator=g)  # (50, 8)
    chunks = [Chunk(f"doc{i % 7}", f"Doc {i % 7}", i, 3 * i, 3 * i + 2, f"text {i}") for i in range(50)]
    store = VectorStore(8)
    store.add(vectors, chunks)
    store.save(tmp_path, "k1")
    assert VectorStore.exists(tmp_path, "k1") and not VectorStore.exists(tmp_path, "k2")
    back = VectorStore.load(tmp_path, "k1")
    assert back.chunks == chunks
    for q in torch.randn(5, 8, generator=g):
        assert back.search(q, 5) == store.search(q, 5)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "no temporary files left"
    meta = json.loads((tmp_path / "k1.json").read_text())
    meta["chunks"] = meta["chunks"][:-1]
    (tmp_path / "k1.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError):
        VectorStore.load(tmp_path, "k1")


def test_using_the_store_leaves_torch_threads_alone() -> None:
    before = torch.get_num_threads()
    store = VectorStore(2)
    store.add(torch.eye(2), [_chunk("a"), _chunk("b")])
    store.search(torch.tensor([1.0, 0.0]))
    assert torch.get_num_threads() == before


def test_bm25_ranks_an_exact_keyword_match_first() -> None:
    texts = ["The optimizer uses a cosine schedule after warm-up.",
             "Deduplication removes near copies with MinHash.",
             "Tokenizers cut text into pieces; BPE merges frequent pairs.",
             "Attention lets positions gather information from earlier ones."]
    index = KeywordIndex([_chunk(t) for t in texts])
    hits = index.search("how does MinHash find copies?", k=3)
    assert hits[0][0].text == texts[1] and hits[0][1] > 0
    assert all(score > 0 for _, score in hits)
    assert index.search("zebra quantum", k=3) == [], "no shared word, nothing returned"
    assert KeywordIndex([]).search("anything") == []


def _fake_vectors(texts: list[str], **_: object) -> torch.Tensor:
    """A stand-in embedder: each lowercase word adds to one of 64 hashed dimensions."""
    out = torch.zeros(len(texts), embedder.DIM)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, int(hashlib.md5(word.strip(".,?").encode()).hexdigest(), 16) % 64] += 1.0
    return torch.nn.functional.normalize(out + 1e-6, dim=-1)


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """embedder.embed replaced by _fake_vectors; the list counts the texts embedded."""
    calls: list[int] = []

    def embed(texts: list[str], **kwargs: object) -> torch.Tensor:
        calls.append(len(texts))
        return _fake_vectors(texts)

    monkeypatch.setattr(embedder, "embed", embed)
    return calls


DOCS = [Document("a", "Doc A", "cats purr and sleep all day " * 30),
        Document("b", "Doc B", "the learning rate warm-up starts small " * 30)]


def test_index_is_saved_reused_and_rebuilt_when_documents_or_knobs_change(tmp_path: Path,
                                                                          fake_embedder: list[int]) -> None:
    first = rag.build_index(DOCS, tmp_path, size=200, overlap=40)
    texts = {c.text for c in first.chunks}
    assert first.built and fake_embedder == [len(texts)] == [first.embedded] and first.documents == 2
    again = rag.build_index(DOCS, tmp_path, size=200, overlap=40)
    assert not again.built and again.key == first.key and again.chunks == first.chunks
    assert len(fake_embedder) == 1, "the saved store was loaded, nothing embedded"

    edited = [DOCS[0], Document("b", "Doc B", DOCS[1].text + " and then decays")]
    rebuilt = rag.build_index(edited, tmp_path, size=200, overlap=40)
    assert rebuilt.built and rebuilt.key != first.key
    assert rebuilt.embedded == fake_embedder[-1] == 1, "only the changed chunk is embedded; the rest is reused"
    upload = rag.build_index(DOCS + [Document("c", "Upload", "my own notes")], tmp_path, 200, 40)
    assert upload.built and upload.embedded == 1 and len(upload.chunks) == len(first.chunks) + 1
    assert rag.build_index(DOCS, tmp_path, size=300, overlap=40).built
    assert rag.build_index(DOCS, tmp_path, size=300, overlap=0).built
    assert len(fake_embedder) == 5
    query = _fake_vectors(["cats purr"])[0]
    assert upload.store.search(query, 1)[0][1] == pytest.approx(first.store.search(query, 1)[0][1], abs=1e-6)
    stores = {p.stem for p in tmp_path.iterdir()}
    assert len(stores) == rag.KEEP_STORES, "only the most recent stores are kept"

    (tmp_path / "unrelated.txt").write_text("not ours")
    key = rag.build_index(DOCS, tmp_path, size=300, overlap=0).key
    (tmp_path / f"{key}.faiss").write_bytes(b"garbage")
    assert rag.build_index(DOCS, tmp_path, size=300, overlap=0).built, "an unreadable store is rebuilt"
    assert (tmp_path / "unrelated.txt").exists(), "pruning touches only the index's own files"


def test_retrieve_returns_both_retrievers_and_their_overlap(tmp_path: Path, fake_embedder: list[int]) -> None:
    index = rag.build_index(DOCS, tmp_path, size=200, overlap=40)
    result = rag.retrieve("when does the warm-up start?", 3, index=index)
    assert result.k == 3 and len(result.semantic) == 3 and result.keyword
    assert [h.rank for h in result.semantic] == [1, 2, 3]
    assert result.keyword[0].chunk.doc_id == "b" and result.semantic[0].chunk.doc_id == "b"
    everything = rag.retrieve("when does the warm-up start?", len(index.chunks), index=index)
    b_chunks = {(c.doc_id, c.position) for c in index.chunks if c.doc_id == "b"}
    assert set(everything.both) == b_chunks, "both retrievers found every chunk of b, only BM25 skips a's"
    scores = [h.score for h in result.semantic]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1.0001 for s in scores)
    assert result.semantic_ms >= 0 and result.keyword_ms >= 0


def test_assemble_prompt_numbers_the_passages_with_their_sources() -> None:
    chunks = [Chunk("lesson-05/table-size", "Lesson 5, How big is the table?", 0, 0, 9, "V x C numbers\n"),
              Chunk("python_stdlib#3", "Python standard library (code), Lib/heapq.py", 2, 50, 60, "def heappush")]
    prompt = rag.assemble_prompt("  How big is the embedding table? ", chunks)
    assert prompt.startswith(rag.PROMPT_HEAD)
    assert "[1] Lesson 5, How big is the table?\nV x C numbers\n\n[2] Python standard library (code), " \
           "Lib/heapq.py\ndef heappush\n\nQuestion: How big is the embedding table?\nAnswer:" in prompt
    hits = [rag.Hit(1, chunks[1], 0.5)]
    assert "[1] Python standard library" in rag.assemble_prompt("q", hits), "hits work as well as chunks"
    assert rag.assemble_prompt("q", []).endswith("Question: q\nAnswer:")


def test_real_model_end_to_end_finds_a_paraphrase_keywords_miss(tmp_path: Path) -> None:
    docs = [Document("warmup", "Schedule", "For the first hundred steps the step size grows slowly from zero."),
            Document("dedup", "Dedup", "Exact copies are found by hashing each page and comparing the hashes."),
            Document("bard", "Play", "Shall I compare thee to a summer's day? Thou art more lovely.")]
    index = rag.build_index(docs, tmp_path)
    result = rag.retrieve("Why should the learning rate begin small?", 1, index=index)
    assert result.semantic[0].chunk.doc_id == "warmup"
    assert result.keyword == [] or result.keyword[0].chunk.doc_id != "warmup", "no shared word to match"
    assert "[1] Schedule" in rag.assemble_prompt(result.question, result.semantic)


def test_vectors_of_another_model_are_never_reused(tmp_path: Path, fake_embedder: list[int]) -> None:
    first = rag.build_index(DOCS, tmp_path, size=200, overlap=40)
    meta = json.loads((tmp_path / f"{first.key}.json").read_text())
    meta["model"] = "some-other-model"
    (tmp_path / f"{first.key}.json").write_text(json.dumps(meta))
    again = rag.build_index(DOCS[:1], tmp_path, size=200, overlap=40)
    assert again.embedded == len({c.text for c in again.chunks}), "nothing reused from the other model's store"
