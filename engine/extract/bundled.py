"""The corpora that ship with the course, as `data/corpora.yaml` lists them, and how a text splits into documents.

This is the bottom of the Extract stage: it knows the manifest, the bundled files and nothing else, so both the
corpus registry (`engine.extract.corpus`) and the generated crawl (`engine.extract.crawl`, built from the bundled
texts) can use it without importing each other. The manifest's rows and rules live in the top-level `manifests`
module, shared with the content validator. A corpus id reaches the disk only through its manifest entry, a plain
file name inside `data/`, so `../secrets` is just an unknown id (docs/architecture.md, "One corpus namespace").

>>> [e.id for e in manifest()]
['tinyshakespeare', 'python_stdlib', 'web_crawl']
>>> split_documents("ROMEO:\\nAy.\\n\\nJULIET:\\nNo.\\n")
['ROMEO:\\nAy.', 'JULIET:\\nNo.']
"""

from __future__ import annotations

import functools
import re

import manifests
import paths
from manifests import BundledCorpus

DATA_DIR = paths.DATA_DIR
MANIFEST = paths.CORPORA_MANIFEST
CODE_FILE_MARKER = re.compile(r"^# ==== file: (?P<path>.+) ====$", re.MULTILINE)


def parse_manifest(text: str) -> list[BundledCorpus]:
    """Manifest YAML -> entries (manifests.CORPORA); ValueError says which entry is wrong and why.

    >>> parse_manifest("- {id: x, title: X, description: d, file: x.txt, kind: prose, split: paragraphs, source: s}")[0].path.name
    'x.txt'
    >>> parse_manifest("- {id: x, title: X, description: d, file: ../x.txt, kind: prose, split: paragraphs, source: s}")
    Traceback (most recent call last):
    ...
    ValueError: corpora.yaml, row 1 ('x'), field 'file': must be a plain file name in data/, not '../x.txt'
    """
    return manifests.CORPORA.parse(text)


@functools.lru_cache(maxsize=1)
def _manifest() -> tuple[BundledCorpus, ...]:
    return tuple(manifests.CORPORA.read(MANIFEST))


def manifest() -> list[BundledCorpus]:
    """Every corpus in `data/corpora.yaml`, in file order (read once per process)."""
    return list(_manifest())


def entry(corpus_id: str) -> BundledCorpus:
    """The manifest entry for `corpus_id`; KeyError names the ids that exist."""
    return manifests.find(_manifest(), corpus_id, "corpus")


def read_text(corpus_id: str) -> str:
    """The text of a bundled file corpus. KeyError for an unknown id, ValueError for a generated one."""
    item = entry(corpus_id)
    if item.path is None:
        raise ValueError(f"corpus {corpus_id!r} is generated, not a file: load it with engine.extract.corpus.load_corpus")
    return item.path.read_text(encoding="utf-8")


def split_documents(text: str, mode: str = "paragraphs") -> list[str]:
    """Split a corpus into documents.

    - "paragraphs": blocks separated by blank lines (in Shakespeare, one speech each).
    - "files": the code corpus's `# ==== file: Lib/<path> ====` marker lines start each document.

    >>> split_documents("a\\nb\\n\\n\\nc")
    ['a\\nb', 'c']
    >>> split_documents("# ==== file: Lib/x.py ====\\nx = 1\\n\\ny = 2\\n", "files")
    ['# ==== file: Lib/x.py ====\\nx = 1\\n\\ny = 2']
    """
    if mode == "paragraphs":
        return [block.lstrip("\n").rstrip() for block in re.split(r"\n[ \t]*\n", text) if block.strip()]
    if mode == "files":
        starts = [m.start() for m in CODE_FILE_MARKER.finditer(text)]
        if not starts:
            return split_documents(text, "paragraphs")
        bounds = zip(starts, starts[1:] + [len(text)], strict=True)
        return [text[a:b].rstrip() for a, b in bounds if text[a:b].strip()]
    raise ValueError(f"unknown split mode {mode!r}: use 'paragraphs' or 'files'")
