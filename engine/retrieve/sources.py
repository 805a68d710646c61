"""Retrieve: the documents a learner can search, as `engine.retrieve.chunking.Document`s: the course's own lesson text,
the bundled corpora and the learner's uploads.

The lesson text is read straight from `lessons/*.yaml` with `yaml.safe_load` (the engine never imports `course`):
one document per card, its title then its body and its "what to notice" text, so a retrieved passage can say
"Lesson 5, How big is the table?". A lesson file that does not parse is skipped here; `python -m course.validate`
is where it is reported. Corpora come through the registry (`engine.extract.corpus`), so an id reaches the disk only as
the registry allows, uploads included.

>>> card = {d.id: d for d in lesson_documents()}["lesson-05/table-size"]
>>> card.source, card.text.splitlines()[0]
('Lesson 5, How big is the table?', 'How big is the table?')
"""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.extract import corpus
from engine.retrieve.chunking import Document

LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
_CODE_MARKER = "# ==== file: "


def lesson_documents(folder: Path = LESSONS_DIR) -> list[Document]:
    """One document per lesson card (title, body, `after`), lessons in file-name order, cards in lesson order."""
    docs: list[Document] = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            lesson = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(lesson, dict) or not isinstance(lesson.get("cards"), list):
            continue
        number = lesson.get("number")
        label = f"lesson-{number:02d}" if isinstance(number, int) else f"lesson-{path.stem}"
        for card in lesson["cards"]:
            if not isinstance(card, dict) or not card.get("id"):
                continue
            title = str(card.get("title", "")).strip()
            parts = [title] + [str(card[key]).strip() for key in ("body", "after") if card.get(key)]
            name = f"Lesson {number}" if isinstance(number, int) else path.stem
            docs.append(Document(f"{label}/{card['id']}", f"{name}, {title}", "\n\n".join(p for p in parts if p)))
    return docs


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
