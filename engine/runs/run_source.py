"""A run's recorded corpus: which text it trained on, so that Resume continues on exactly that text or says why not.

A learner may pick another corpus, or clean theirs differently, between starting a run and resuming it; a resume
handed their current text would then fail on characters its tokenizer lacks or, worse, go on quietly learning
other text. So each run folder keeps `source.json`: the corpus id, the cleaning options that made the text (None:
the corpus as loaded), the text's SHA-256 and length. Before a resume the page rebuilds the text from the id and
options and `check`s it against the hash. A folder from before this file has none: `check` has nothing to compare
and says nothing, so such a run resumes on the text it is given, as it always did.

    record(run_dir, "tinyshakespeare", None, text)
    check(run_dir, text)            # None: the same text
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.extract.corpus import content_hash
from engine.files import write_text

SOURCE_FILE = "source.json"


@dataclass(frozen=True)
class RunSource:
    """What a run trained on. `corpus_id` None: a text the course cannot rebuild by id (a slice, a deduplicated
    copy), recorded for its hash only."""

    corpus_id: str | None
    cleaning: dict[str, Any] | None  # engine.extract.cleaning.CleaningOptions as a dict; None: not cleaned
    sha256: str
    chars: int
    title: str = ""  # the corpus's title when recorded, for a message once the corpus is gone


def record(run_dir: Path | str, corpus_id: str | None, cleaning: Mapping[str, Any] | None, text: str,
           title: str = "") -> RunSource:
    """Write `run_dir`/source.json (creating the folder if the run has not yet) and return what it says.

    >>> import tempfile
    >>> record(tempfile.mkdtemp(), "tinyshakespeare", None, "To be").chars
    5
    """
    source = RunSource(corpus_id, dict(cleaning) if cleaning is not None else None, content_hash(text), len(text),
                       title)
    write_text(Path(run_dir) / SOURCE_FILE, json.dumps(asdict(source), indent=2) + "\n")
    return source


def read(run_dir: Path | str) -> RunSource | None:
    """The run's recorded source; None for a folder without one (older, or never recorded) or one that does not
    read."""
    try:
        data = json.loads((Path(run_dir) / SOURCE_FILE).read_text(encoding="utf-8"))
        return RunSource(data.get("corpus_id"), data.get("cleaning"), str(data["sha256"]), int(data["chars"]),
                         str(data.get("title") or ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def check(run_dir: Path | str, text: str) -> str | None:
    """None when `text` is the text the run trained on (or the folder recorded none); else why it is not, in words
    for the learner.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = record(folder, "tinyshakespeare", None, "To be")
    >>> check(folder, "To be") is None, check(folder, "Not to be")[:46]
    (True, 'This run trained on a text of 5 characters but')
    """
    source = read(run_dir)
    if source is None or source.sha256 == content_hash(text):
        return None
    same_length = "the same length" if len(text) == source.chars else f"{len(text):,} characters"
    return (f"This run trained on a text of {source.chars:,} characters but its corpus now gives a different one "
            f"({same_length}): it or its cleaning has changed since. Resuming would continue on other text, so "
            "start a new run instead; this one stays as it is.")
