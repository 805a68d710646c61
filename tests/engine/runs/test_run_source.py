"""engine.runs.run_source: a run folder records the corpus, cleaning and hash of its text, and says whether a text
is that text."""

from __future__ import annotations

import json
from pathlib import Path

from engine.extract.corpus import content_hash
from engine.runs.run_source import SOURCE_FILE, RunSource, check, read, record


def test_a_recorded_source_reads_back_and_recognises_its_text(tmp_path: Path) -> None:
    run_dir = tmp_path / "not-yet-started"  # the page records before the training process made the folder
    text = "First Citizen:\nBefore we proceed any further, hear me speak. 🙂"
    cleaning = {"normalize_whitespace": True, "min_chars": 50}
    written = record(run_dir, "upload-notes-0a1b2c3d", cleaning, text, title="My notes")
    assert read(run_dir) == written == RunSource("upload-notes-0a1b2c3d", cleaning, content_hash(text), len(text),
                                                 "My notes")
    assert json.loads((run_dir / SOURCE_FILE).read_text())["sha256"] == content_hash(text)
    assert check(run_dir, text) is None


def test_another_text_is_refused_with_a_reason(tmp_path: Path) -> None:
    record(tmp_path, "tinyshakespeare", None, "abcdef")
    longer = check(tmp_path, "abcdefgh")
    assert longer is not None and "6 characters" in longer and "8 characters" in longer and "new run" in longer
    same_length = check(tmp_path, "abcdeX")
    assert same_length is not None and "same length" in same_length


def test_a_folder_without_a_record_has_nothing_to_check(tmp_path: Path) -> None:
    """Folders from before runs recorded their text resume on the text they are given, as they always did."""
    assert read(tmp_path) is None and check(tmp_path, "any text") is None
    (tmp_path / SOURCE_FILE).write_text('{"corpus_id": "x"')  # cut short: no record rather than a crash
    assert read(tmp_path) is None and check(tmp_path, "any text") is None
    (tmp_path / SOURCE_FILE).write_text('["not", "a", "record"]')
    assert read(tmp_path) is None


def test_a_text_the_course_cannot_rebuild_keeps_its_hash(tmp_path: Path) -> None:
    record(tmp_path, None, None, "a slice of a corpus")
    assert read(tmp_path).corpus_id is None and read(tmp_path).cleaning is None
    assert check(tmp_path, "a slice of a corpus") is None and check(tmp_path, "another slice") is not None
