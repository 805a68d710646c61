"""engine.runs.retention: what prune_runs never deletes (a queued resume's source, another database's runs, recent
and protected folders), and the cap on the runs folder's bytes."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

import paths
from engine.runs.retention import (
    MAX_BYTES,
    OWNER_FILE,
    claim,
    max_bytes_setting,
    owner_identity,
    prune_runs,
    read_owner,
)


def _run(root: Path, name: str, days: float = 0.0, size: int = 100) -> Path:
    """A run folder of about `size` bytes whose files last changed `days` ago."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "stopped", "steps": 3}))
    (run_dir / "ckpt.pt").write_bytes(b"w" * size)
    t = time.time() - days * 86400
    for p in [run_dir, *run_dir.iterdir()]:
        os.utime(p, (t, t))
    return run_dir


def test_a_queued_resumes_source_is_never_pruned(tmp_path: Path) -> None:
    """The manager passes the folder each queued or running resume or fine-tune will read: old enough to go by
    age and by count, it stays, while an unprotected folder of the same age goes."""
    source = _run(tmp_path, "learners-old-run", days=90)
    finetune_source = _run(tmp_path, "finetune-source", days=90)
    stale = _run(tmp_path, "forgotten", days=90)
    deleted = prune_runs(tmp_path, protected=[source, str(finetune_source)], keep=0, max_age_days=30)
    assert deleted == [stale] and source.exists() and finetune_source.exists()
    relative = Path(os.path.relpath(source, Path.cwd()))  # however the caller spells the path
    assert prune_runs(tmp_path, protected=[relative], keep=0, max_bytes=1) == [finetune_source] and source.exists()


def test_only_the_owning_database_prunes_a_shared_runs_folder(tmp_path: Path, caplog) -> None:
    root = tmp_path / "runs"
    first, second = owner_identity(tmp_path / "a" / "progress.sqlite3"), owner_identity(tmp_path / "b.sqlite3")
    old = [_run(root, f"old{i}", days=60) for i in range(3)]
    assert set(prune_runs(root, owner=first, keep=50, max_age_days=30)) == set(old)
    assert read_owner(root) == first  # claimed on the first prune
    theirs = [_run(root, f"theirs{i}", days=60) for i in range(2)]
    with caplog.at_level(logging.WARNING, logger="engine.runs.retention"):
        assert prune_runs(root, owner=second, keep=0, max_age_days=30, max_bytes=1) == []
    assert all(d.exists() for d in theirs) and read_owner(root) == first
    assert first in caplog.text and second in caplog.text and "not pruning" in caplog.text
    assert set(prune_runs(root, owner=owner_identity(tmp_path / "a" / ".." / "a" / "progress.sqlite3"),
                          max_age_days=30)) == set(theirs)  # the same file, spelled another way: the owner


def test_a_claim_never_replaces_another_owner_and_an_unreadable_marker_stops_pruning(tmp_path: Path) -> None:
    assert claim(tmp_path, "db-one") == "db-one"
    assert claim(tmp_path, "db-two") == "db-one"
    assert sorted(p.name for p in tmp_path.iterdir()) == [OWNER_FILE]  # no temporary file left behind
    (tmp_path / OWNER_FILE).write_text("{ half")
    old = _run(tmp_path, "old", days=60)
    assert prune_runs(tmp_path, owner="db-one", max_age_days=30) == [] and old.exists()
    assert prune_runs(tmp_path, max_age_days=30) == [old]  # no owner given: no check (a single-user tool)


def test_owner_identity_drops_a_urls_password() -> None:
    assert owner_identity("postgresql://course:secret@db.local:5432/class") == "postgresql://course@db.local:5432/class"
    assert owner_identity("sqlite3.db") == str(Path.cwd() / "sqlite3.db")


def test_the_byte_cap_removes_the_oldest_unprotected_folders_first(tmp_path: Path) -> None:
    newest = _run(tmp_path, "newest", days=1, size=1000)
    mine = _run(tmp_path, "mine", days=10, size=1000)  # a learner's run: counts, but never goes
    middle = _run(tmp_path, "middle", days=5, size=1000)
    older = _run(tmp_path, "older", days=6, size=1000)
    oldest = _run(tmp_path, "oldest", days=7, size=1000)
    training = _run(tmp_path, "training", days=0, size=5000)  # changed within the hour: never goes
    deleted = prune_runs(tmp_path, protected=[mine], max_bytes=8500)
    assert deleted == [oldest, older]  # about 10,200 bytes -> 9,200 -> 8,100: under the cap, so middle stays
    assert all(d.exists() for d in (newest, mine, middle, training))
    assert prune_runs(tmp_path, protected=[mine], max_bytes=1) == [middle, newest]  # never mine nor training
    assert mine.exists() and training.exists()


def test_the_cap_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(paths.RUNS_MAX_BYTES_VAR, raising=False)
    assert max_bytes_setting() == MAX_BYTES
    monkeypatch.setenv(paths.RUNS_MAX_BYTES_VAR, "2e9")
    assert max_bytes_setting() == 2e9
    monkeypatch.setenv(paths.RUNS_MAX_BYTES_VAR, "inf")
    assert max_bytes_setting() == float("inf")
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv(paths.RUNS_MAX_BYTES_VAR, bad)
        assert max_bytes_setting() == MAX_BYTES


@pytest.mark.parametrize("cap", [None, float("inf")])
def test_without_a_tight_cap_count_and_age_decide(tmp_path: Path, cap, monkeypatch) -> None:
    monkeypatch.delenv(paths.RUNS_MAX_BYTES_VAR, raising=False)
    runs = [_run(tmp_path, f"r{i}", days=2 + i, size=10_000) for i in range(4)]
    assert prune_runs(tmp_path, keep=2, max_bytes=cap) == runs[2:]


def test_the_manager_keeps_the_source_of_a_queued_resume(tmp_path: Path, small_text: str) -> None:
    """Through the run manager: a resume waits behind a run that holds the only slot, and a third submission prunes
    while its source folder, 90 days old, would otherwise go."""
    from dataclasses import replace

    from engine.runs.manager import RunManager
    from engine.train.config import PRESETS

    m = RunManager(max_concurrent=1, runs_root=tmp_path, workers="thread")
    runs = [m.submit(replace(PRESETS["tiny"], max_steps=1_000_000), small_text)]
    try:
        source = _run(tmp_path, "old-stopped-run", days=90)  # the learner's progress no longer points at it: the
        stale = _run(tmp_path, "forgotten", days=90)  # resume took over its run key
        runs.append(m.submit(PRESETS["tiny"], small_text, resume_from=source))
        assert m.snapshot(runs[-1]).status == "queued"
        runs.append(m.submit(PRESETS["tiny"], small_text))
        assert source.exists() and not stale.exists()
    finally:
        for run_id in runs:
            m.stop(run_id)
        for run_id in runs:
            m.wait(run_id, timeout=60)
