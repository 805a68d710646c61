"""Lesson 1's map, made concrete: one line of text followed through Extract, Transform, Load and Retrieve.

Every number comes from the engine the later lessons use: the bundled corpus (Extract), the character tokenizer
and the next-character examples a training run cuts from text (Transform), the parameter count of the model
lesson 7 trains (Load), and the keyword retriever of lesson 10 (Retrieve). `trace_line` is the pure "show me"
function the widget draws.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.retrieve.chunking import Chunk
from engine.retrieve.keyword_search import KeywordIndex, words
from engine.transform.tokenization import CharTokenizer

BYTES_PER_WEIGHT = 4  # a 32-bit float per parameter, as lesson 7's checkpoint stores them
MAX_EXAMPLES = 6


@dataclass(frozen=True)
class Extract:
    corpus_chars: int  # size of the whole corpus, in characters
    found_at: int | None  # where the line first appears in the corpus (character offset), None if nowhere
    times_found: int  # how many times it appears


@dataclass(frozen=True)
class Transform:
    ids: list[int]  # the line as token ids (characters the vocabulary lacks are left out)
    unknown: list[str]  # characters of the line that are not in the corpus's vocabulary
    vocab_size: int
    examples: list[tuple[str, str]]  # the first (context, next character) practice questions the line makes
    n_examples: int  # how many it makes in all: one per character after the first


@dataclass(frozen=True)
class Load:
    parameters: int  # numbers in the model lesson 7 trains
    weight_bytes: int  # their size on disk as 32-bit floats
    corpus_bytes: int  # the training text's size, for comparison


@dataclass(frozen=True)
class Retrieve:
    question: str
    passages: list[tuple[Chunk, float, list[str]]]  # best keyword matches, best first: chunk, score, shared words


@dataclass(frozen=True)
class PipelineTrace:
    line: str
    extract: Extract
    transform: Transform
    load: Load
    retrieve: Retrieve


def shared_words(question: str, passage: str) -> list[str]:
    """The search terms of `question` that `passage` contains, in the question's order: why it matched.

    >>> shared_words("But, soft! what light through yonder window breaks?", "It is the east... the window")
    ['window']
    """
    have = set(words(passage))
    return list(dict.fromkeys(w for w in words(question) if w in have))


def trace_line(line: str, corpus: str, tokenizer: CharTokenizer, parameters: int, index: KeywordIndex,
               question: str | None = None) -> PipelineTrace:
    """Follow `line` through the four stages of lesson 1, against `corpus` (its text and character tokenizer),
    the parameter count of the model that will learn from it, and a keyword index over the corpus's passages.

    >>> corpus = "To be, or not to be: that is the question."
    >>> tok = CharTokenizer.from_text(corpus)
    >>> t = trace_line("not to be!", corpus, tok, parameters=1000, index=KeywordIndex([]))
    >>> t.extract.found_at is None    # the line with its "!" is nowhere in this corpus
    True
    >>> trace_line("not to be", corpus, tok, 1000, KeywordIndex([])).extract.found_at
    10
    >>> t.transform.unknown, t.transform.n_examples, t.transform.examples[:2]
    (['!'], 9, [('n', 'o'), ('no', 't')])
    >>> t.load.weight_bytes
    4000
    """
    vocab = tokenizer.vocab()
    unknown = sorted({ch for ch in line if ch not in vocab})
    known = "".join(ch for ch in line if ch in vocab)
    ids = tokenizer.encode(known)
    examples = [(line[:i], line[i]) for i in range(1, min(len(line), MAX_EXAMPLES + 1))]
    found = corpus.find(line) if line else -1
    question = question if question is not None else line
    return PipelineTrace(
        line=line,
        extract=Extract(corpus_chars=len(corpus), found_at=found if found >= 0 else None,
                        times_found=corpus.count(line) if line else 0),
        transform=Transform(ids=ids, unknown=unknown, vocab_size=tokenizer.vocab_size, examples=examples,
                            n_examples=max(0, len(line) - 1)),
        load=Load(parameters=parameters, weight_bytes=parameters * BYTES_PER_WEIGHT,
                  corpus_bytes=len(corpus.encode("utf-8"))),
        retrieve=Retrieve(question=question, passages=[(chunk, score, shared_words(question, chunk.text))
                                                       for chunk, score in index.search(question, k=2)]),
    )
