"""Retrieve: the documents a learner can search that the engine can name itself, as `chunking.Document`s: the
bundled corpora and the learner's uploads (`corpus_documents`), and a text pasted this minute (`text_document`).

Corpora come through the registry (`engine.extract.corpus`), so an id reaches the disk only as the registry allows,
uploads included; a code corpus's documents are named by their file path. The course's own lesson text is not read
here: lessons are content, loaded and checked by `course.loader` (which the engine never imports), so the UI turns
the loaded course into documents (`ui.lesson_documents`) and passes them in as plain data, beside these.
"""

from __future__ import annotations

from pathlib import Path

from engine.extract import corpus
from engine.retrieve.chunking import Document

_CODE_MARKER = "# ==== file: "


def corpus_documents(corpus_id: str, upload_folder: Path | None = None) -> list[Document]:
    """A corpus of the registry (bundled, the generated crawl, or an upload in `upload_folder`) as documents,
    named "<corpus title>, document N" (code documents by their file path). KeyError for an unknown id.

    >>> corpus_documents("python_stdlib")[0].source
    'Python standard library (code), Lib/bisect.py'
    """
    info = corpus.get_corpus(corpus_id, upload_folder)
    docs = []
    for i, text in enumerate(corpus.load_documents(corpus_id, upload_folder)):
        first = text.split("\n", 1)[0]
        where = first[len(_CODE_MARKER):].removesuffix(" ====") if first.startswith(_CODE_MARKER) else \
            f"document {i + 1}"
        docs.append(Document(f"{corpus_id}#{i}", f"{info.title}, {where}", text))
    return docs


def text_document(name: str, text: str) -> Document:
    """A text the learner pasted or uploaded this minute (already checked by `engine.extract.uploads.validate_upload`),
    as one document, named by its content hash so the same text is the same document.

    >>> text_document("notes.txt", "Hello").id
    'text-185f8db322'
    """
    return Document(f"text-{corpus.content_hash(text)[:10]}", name or "your text", text)
