"""The corpora that ship with the course, as `data/corpora.yaml` lists them, and how a text splits into documents.

This is the bottom of the Extract stage: it knows the manifest, the bundled files and nothing else, so both the
corpus registry (`engine.extract.corpus`) and the generated crawl (`engine.extract.crawl`, built from the bundled texts) can use
it without importing each other. The content validator (`course/widgets.py`) reads the same manifest with its
own small reader, since `course` never imports the engine.

A corpus id reaches the disk only through its manifest entry: `read_text` looks the id up and opens the entry's
`file`, which the reader checks is a plain file name inside `data/`. An id such as `../secrets` is just an
unknown id.

>>> [e.id for e in manifest()]
['tinyshakespeare', 'python_stdlib', 'web_crawl']
>>> split_documents("ROMEO:\\nAy.\\n\\nJULIET:\\nNo.\\n")
['ROMEO:\\nAy.', 'JULIET:\\nNo.']
"""

from __future__ import annotations

import functools
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path

import yaml

import paths

DATA_DIR = paths.DATA_DIR
MANIFEST = paths.CORPORA_MANIFEST
ID_PATTERN = re.compile(r"[a-z0-9_]{1,40}")  # use with fullmatch
KINDS = ("prose", "code", "web")
SPLITS = ("paragraphs", "files", "crawl")
CODE_FILE_MARKER = re.compile(r"^# ==== file: (?P<path>.+) ====$", re.MULTILINE)

# Values shown in messages: short even for an alias bomb (whose str() or repr() would never end).
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60


@dataclass(frozen=True)
class BundledCorpus:
    """One manifest entry. `file` is None for a generated corpus (the web crawl)."""

    id: str
    title: str
    description: str
    file: str | None
    kind: str  # "prose" | "code" | "web"
    split: str  # how its text splits into documents: "paragraphs" | "files" | "crawl"
    source: str  # where it came from, in one line

    @property
    def path(self) -> Path | None:
        return None if self.file is None else DATA_DIR / self.file


def parse_manifest(text: str) -> list[BundledCorpus]:
    """Manifest YAML -> entries; ValueError says which entry is wrong and why.

    >>> parse_manifest("- {id: x, title: X, description: d, file: x.txt, kind: prose, split: paragraphs, source: s}")[0].path.name
    'x.txt'
    >>> parse_manifest("- {id: x, title: X, description: d, file: ../x.txt, kind: prose, split: paragraphs, source: s}")
    Traceback (most recent call last):
    ...
    ValueError: corpora.yaml, entry 'x': file must be a plain file name in data/, not '../x.txt'
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"corpora.yaml: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    except (RecursionError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as err:
        # nesting deep enough to exhaust recursion, or a scalar PyYAML cannot construct (`2020-13-45`)
        raise ValueError(f"corpora.yaml: not readable YAML ({type(err).__name__}: {_SHORT.repr(str(err))})") from None
    if not isinstance(raw, list):
        raise ValueError("corpora.yaml must be a list of corpora")
    entries: list[BundledCorpus] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError(f"corpora.yaml: each corpus must be a mapping, not {_SHORT.repr(item)}")
        raw_id = item.get("id", "")
        cid = raw_id if isinstance(raw_id, str) else _SHORT.repr(raw_id)  # str() of an alias bomb never ends

        def bad(why: str, cid: str = cid) -> ValueError:
            return ValueError(f"corpora.yaml, entry {cid!r}: {why}")

        if not ID_PATTERN.fullmatch(cid) or cid in {e.id for e in entries}:
            raise bad("id must be unique, 1-40 lowercase letters, digits or _")
        file, generated = item.get("file"), item.get("generated", False)
        if (file is None) == (generated is not True):
            raise bad("give either `file` or `generated: true`")
        if file is not None and (not isinstance(file, str) or Path(file).name != file or file.startswith(".")):
            raise bad(f"file must be a plain file name in data/, not {_SHORT.repr(file)}")
        if item.get("kind") not in KINDS or item.get("split") not in SPLITS:
            raise bad(f"kind must be one of {KINDS} and split one of {SPLITS}")
        unknown = set(item) - {"id", "title", "description", "file", "generated", "kind", "split", "source"}
        if unknown:
            raise bad(f"unknown fields {sorted(unknown)}")
        entries.append(BundledCorpus(cid, str(item["title"]), str(item["description"]), file, item["kind"],
                                     item["split"], str(item["source"])))
    return entries


@functools.lru_cache(maxsize=1)
def _manifest() -> tuple[BundledCorpus, ...]:
    return tuple(parse_manifest(MANIFEST.read_text(encoding="utf-8")))


def manifest() -> list[BundledCorpus]:
    """Every corpus in `data/corpora.yaml`, in file order (read once per process)."""
    return list(_manifest())


def entry(corpus_id: str) -> BundledCorpus:
    """The manifest entry for `corpus_id`; KeyError names the ids that exist."""
    for item in _manifest():
        if item.id == corpus_id:
            return item
    raise KeyError(f"unknown corpus {corpus_id!r}; known: {', '.join(e.id for e in _manifest())}")


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
