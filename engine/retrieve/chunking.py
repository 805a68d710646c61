"""Retrieve: documents cut into overlapping chunks, the unit a retriever finds and a prompt quotes.

A passage should be short enough to say one thing (the embedding of a long text is the blur of everything in it,
and the encoder reads at most 256 tokens of it) and long enough to make sense on its own; overlap repeats the end
of one chunk at the start of the next, so a sentence cut by a boundary is still whole in one of them. Both knobs
are in **characters**, not words or tokens: in code one "word" can be ten tokens, and characters keep a chunk's
token count predictable for prose and code alike. Boundaries move back to the nearest whitespace, so no word is
cut in half (a "word" longer than the chunk, such as a URL, is cut where it must be). Every chunk keeps its
document, its position and its exact span, `document.text[chunk.start:chunk.end] == chunk.text`, and together the
chunks cover every non-blank character.

>>> [text for _, _, text in chunk_spans("one two three four five six", size=10, overlap=4)]
['one two', 'two three', 'three four', 'four five', 'five six']
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SIZE = 600  # characters: ~130-200 tokens, well under the embedder's 256
DEFAULT_OVERLAP = 100  # characters: a sentence or so


@dataclass(frozen=True)
class Document:
    """A text to search. `id` is unique and stable (e.g. "lesson-05/table-size", "python_stdlib#3"); `source`
    is how a page or a prompt names it for a person ("Lesson 5, How big is the table?")."""

    id: str
    source: str
    text: str


@dataclass(frozen=True)
class Chunk:
    """One passage: from document `doc_id`, its `position`-th chunk (0-based), characters [start, end)."""

    doc_id: str
    source: str
    position: int
    start: int
    end: int
    text: str


def check_knobs(size: int, overlap: int) -> None:
    """ValueError with the reason when the knobs cannot work.

    >>> check_knobs(100, 100)
    Traceback (most recent call last):
    ...
    ValueError: overlap (100) must be at least 0 and smaller than the chunk size (100)
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 character, not {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap ({overlap}) must be at least 0 and smaller than the chunk size ({size})")


def chunk_spans(text: str, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP) -> list[tuple[int, int, str]]:
    """(start, end, text[start:end]) of each chunk of `text`: at most `size` characters, starting about `overlap`
    characters before the previous one ended, with boundaries moved to whitespace. Blank text gives no chunks.

    >>> chunk_spans("  hello  ", size=20, overlap=5)
    [(2, 7, 'hello')]
    >>> [t for _, _, t in chunk_spans("abcdefghijklmnopqrstuvwxyz0123456789", size=20, overlap=5)]
    ['abcdefghijklmnopqrst', 'pqrstuvwxyz012345678', '456789']
    """
    check_knobs(size, overlap)
    n = len(text)
    spans: list[tuple[int, int, str]] = []
    start = _skip_space(text, 0)
    while start < n:
        end = min(start + size, n)
        forced = False  # cut inside a word longer than half a chunk
        if end < n and not text[end].isspace():
            cut = _last_space(text, start + size // 2, end)  # keep at least half a chunk
            if cut is None:
                forced = True
            else:
                end = cut
        while end > start and text[end - 1].isspace():
            end -= 1
        spans.append((start, end, text[start:end]))
        if _skip_space(text, end) >= n:
            break
        nxt = max(end - overlap, start + 1)
        inside_word = not text[nxt - 1].isspace() and nxt < n and not text[nxt].isspace()
        if inside_word and not forced:  # back to the word's start if that still moves on, else to the next word
            back = nxt
            while back > start and not text[back - 1].isspace():
                back -= 1
            if back > start:
                nxt = back
            else:
                while nxt < end and not text[nxt - 1].isspace():
                    nxt += 1
        start = _skip_space(text, nxt)
    return spans


def chunk_documents(documents: list[Document], size: int = DEFAULT_SIZE,
                    overlap: int = DEFAULT_OVERLAP) -> list[Chunk]:
    """Every document's chunks, in document order.

    >>> [(c.doc_id, c.position, c.text) for c in chunk_documents([Document("a", "A", "x y"), Document("b", "B", "z")])]
    [('a', 0, 'x y'), ('b', 0, 'z')]
    """
    return [Chunk(doc.id, doc.source, i, a, b, t)
            for doc in documents for i, (a, b, t) in enumerate(chunk_spans(doc.text, size, overlap))]


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _last_space(text: str, lo: int, hi: int) -> int | None:
    """The largest i in (lo, hi] with text[i] whitespace, or None."""
    for i in range(hi, lo, -1):
        if text[i].isspace():
            return i
    return None
