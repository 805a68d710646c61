"""Extract: the corpus registry. Every corpus a learner can pick, by id, as text and as documents.

Three sources share one namespace of ids: the bundled corpora and the generated web crawl, both listed in
`data/corpora.yaml` (read by `engine.extract.bundled`), and the learner's uploads (`upload-<slug>-<hash>`, saved by
`engine.extract.uploads` in the learner's folder). An id becomes a path only after it matched the manifest or the
upload-id pattern, so no id, whatever its origin, can reach a file outside `data/` or the learner's folder.
Cleaning lives in `engine.extract.cleaning`, duplicate removal in `engine.extract.dedup`.

>>> [c.id for c in list_corpora()]
['tinyshakespeare', 'python_stdlib', 'web_crawl']
>>> load_documents("python_stdlib")[0].splitlines()[0]
'# ==== file: Lib/bisect.py ===='
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.extract import bundled, crawl, uploads
from engine.extract.bundled import DATA_DIR, split_documents

CRAWL_ID = "web_crawl"

__all__ = ["CRAWL_ID", "DATA_DIR", "CorpusInfo", "content_hash", "get_corpus", "list_corpora", "load_corpus",
           "load_documents", "split_documents"]


@dataclass(frozen=True)
class CorpusInfo:
    """One corpus the learner can pick. `path` is None for generated corpora (the web-crawl sample)."""

    id: str
    title: str
    description: str
    path: Path | None
    size_bytes: int  # UTF-8 size of the text `load_corpus` returns
    kind: str  # "prose" | "code" | "web" | "upload"
    split: str  # how `load_documents` splits it: "paragraphs" | "files" | "crawl"
    source: str  # where it came from, in one line


def list_corpora(upload_folder: Path | None = None) -> list[CorpusInfo]:
    """The corpora of the manifest (bundled files that exist, the generated crawl), then the learner's uploads
    in `upload_folder` (by title)."""
    corpora = []
    for item in bundled.manifest():
        if item.path is None:
            size = _crawl_size()
        elif item.path.exists():
            size = item.path.stat().st_size
        else:
            continue
        corpora.append(CorpusInfo(item.id, item.title, item.description, item.path, size, item.kind, item.split,
                                  item.source))
    own = [_upload_info(p) for p in uploads.upload_files(upload_folder)]
    return corpora + sorted(own, key=lambda c: (c.title.lower(), c.id))


def get_corpus(corpus_id: str, upload_folder: Path | None = None) -> CorpusInfo:
    """The registry entry for `corpus_id`; KeyError names the ids that exist."""
    corpora = list_corpora(upload_folder)
    for info in corpora:
        if info.id == corpus_id:
            return info
    raise KeyError(f"unknown corpus {corpus_id!r}; known: {', '.join(c.id for c in corpora)}")


def load_corpus(corpus_id: str, upload_folder: Path | None = None) -> str:
    """The whole text of a corpus. The crawl sample comes back as its pages joined by blank lines.

    >>> load_corpus("../README.md")
    Traceback (most recent call last):
    ...
    KeyError: "unknown corpus '../README.md'"
    """
    if corpus_id == CRAWL_ID:
        return _crawl_text()
    if corpus_id in {e.id for e in bundled.manifest()}:
        return bundled.read_text(corpus_id)
    if upload_folder is not None and uploads.UPLOAD_ID.fullmatch(corpus_id):
        path = uploads.upload_path(upload_folder, corpus_id)
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise KeyError(f"unknown corpus {corpus_id!r}")


def load_documents(corpus_id: str, upload_folder: Path | None = None) -> list[str]:
    """A corpus as documents: Shakespeare by speech, code by module, the crawl by page, uploads by paragraph."""
    if corpus_id == CRAWL_ID:
        return [doc.text for doc in crawl.make_crawl()]
    info = get_corpus(corpus_id, upload_folder)
    return split_documents(load_corpus(corpus_id, upload_folder), info.split)


def content_hash(text: str) -> str:
    """A stable hex digest of a text, for caching results by content.

    >>> content_hash("hello")[:12]
    '2cf24dba5fb0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def _crawl_text() -> str:
    """The generated crawl as one text, built once: listing corpora (every page rerun) asks for its size."""
    return "\n\n".join(doc.text for doc in crawl.make_crawl())


@functools.lru_cache(maxsize=1)
def _crawl_size() -> int:
    return len(_crawl_text().encode("utf-8"))


def _upload_info(path: Path) -> CorpusInfo:
    return CorpusInfo(path.stem, uploads.upload_title(path), "Your own text.", path, path.stat().st_size, "upload",
                      "paragraphs", "uploaded by the learner")
