"""Retrieve: the keyword baseline. BM25 ranks chunks by the question's words they contain, weighting a rare word
more than a common one and a short chunk's match more than a long one's. No meaning, only spelling: "warm-up"
finds "warm-up" but not "the first steps use a small learning rate". The semantic retriever (`engine.retrieve.embedder`
with `engine.retrieve.vector_store`) is the other side of that comparison.

BM25 comes from `bm25s` (a maintained, numpy-only implementation; docs/dependencies.md), with Lucene's variant
and its default k1 = 1.5, b = 0.75, lower-cased words of two or more letters or digits, English stop words
dropped. Building the index over a few thousand chunks takes a fraction of a second, so it is never saved.

>>> kw = KeywordIndex([_c("the cat sat on the mat"), _c("dogs chase cats"), _c("a learning rate warm-up")])
>>> [(c.text, round(s, 2)) for c, s in kw.search("warm-up of the learning rate", k=2)]
[('a learning rate warm-up', 1.44)]
>>> words("The Warm-up, in 2 steps!")
['warm', 'up', 'steps']
"""

from __future__ import annotations

import bm25s

from engine.retrieve.chunking import Chunk

STOPWORDS = "en"


def words(text: str) -> list[str]:
    """The terms BM25 compares: the same tokenizer for chunks and questions."""
    return bm25s.tokenize([text], stopwords=STOPWORDS, return_ids=False, show_progress=False)[0]


class KeywordIndex:
    """BM25 over `chunks`. `search` returns only chunks sharing at least one term with the question."""

    def __init__(self, chunks: list[Chunk]):
        self.chunks = list(chunks)
        self.bm25 = bm25s.BM25()
        if self.chunks:
            terms = bm25s.tokenize([c.text for c in self.chunks], stopwords=STOPWORDS, return_ids=False,
                                   show_progress=False)
            self.bm25.index(terms, show_progress=False)
        self.vocabulary = set(self.bm25.vocab_dict) if self.chunks else set()

    def search(self, question: str, k: int = 5) -> list[tuple[Chunk, float]]:
        """Up to k chunks, best BM25 score first; none when no word of the question occurs in any chunk."""
        terms = [t for t in words(question) if t in self.vocabulary]
        k = min(k, len(self.chunks))
        if not terms or k <= 0:
            return []
        ids, scores = self.bm25.retrieve([terms], k=k, show_progress=False, n_threads=1)  # (1, k) each
        return [(self.chunks[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


def _c(text: str) -> Chunk:
    """A one-chunk document, for examples."""
    return Chunk(text, text, 0, 0, len(text), text)
