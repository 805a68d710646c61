"""The retrieval benchmark's labelled questions stay valid as lessons change, and its recall is computed right."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench import retrieval as bench_retrieval
from course.loader import load_course
from engine.retrieve import embedder, rag
from engine.retrieve.chunking import Document
from ui.lesson_documents import lesson_documents


def test_every_labelled_answer_is_a_lesson_card() -> None:
    questions = bench_retrieval.load_questions()
    cards = {d.id for d in lesson_documents(load_course())}
    assert len(questions) >= 20
    for q in questions:
        missing = set(q.answers) - cards
        assert not missing, f"{q.question!r} names cards that no lesson has: {sorted(missing)}"
    assert len({q.question for q in questions}) == len(questions)


def test_a_malformed_question_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("- question: What?\n  answers: []\n")
    with pytest.raises(ValueError, match="entry 1"):
        bench_retrieval.load_questions(path)


def test_recall_counts_a_question_found_when_any_answer_is_in_the_top_k(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    words = ["apples", "rivers", "engines"]

    def embed(texts: list[str], **_: object) -> torch.Tensor:  # one axis per topic word
        out = torch.full((len(texts), embedder.DIM), 1e-3)
        for i, text in enumerate(texts):
            for j, word in enumerate(words):
                out[i, j] += text.count(word)
        return out

    monkeypatch.setattr(embedder, "embed", embed)
    docs = [Document(w, w, f"all about {w} and {w}") for w in words]
    index = rag.build_index(docs, tmp_path)
    questions = [bench_retrieval.Question("tell me about apples", ("apples",)),
                 bench_retrieval.Question("what about rivers", ("rivers", "nowhere")),
                 bench_retrieval.Question("something else entirely", ("engines",))]
    recall = bench_retrieval.evaluate(index, questions, k=1)
    assert (recall.semantic, recall.keyword) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert recall.keyword_missed == ["something else entirely"] and len(recall.query_ms) == 3
