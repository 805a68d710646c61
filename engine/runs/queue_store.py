"""The run queue on disk: every waiting run, and every run handed to Ray, kept in the progress database.

A run waiting for a slot exists only in the server's memory otherwise, so a restart would drop a class's queue.
Each waiting run is one row holding its whole job (config, text, tokenizer: what `engine.runs.worker.make_job`
writes), in the order it was asked for; the row goes when the run ends. A server that starts again reads the rows
back (`waiting`) and queues them in the same order; runs it had handed to Ray (`attached`) it follows again.

The table lives beside the learners' progress (the same SQLite file, `paths.progress_db()`), so one backup holds
both. The engine does not import the course's progress store: this module speaks SQL to its own table only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runs.executors import RunRecord
from engine.train.config import TrainConfig
from engine.transform.tokenization import tokenizer_from_dict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL, batch TEXT,
    label TEXT NOT NULL, run_dir TEXT NOT NULL, job TEXT NOT NULL, state TEXT NOT NULL, backend TEXT,
    created_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class StoredRun:
    """One row: a run that was waiting (state "queued") or training under Ray (state "running") when it was read."""

    run_id: str
    owner: str
    batch: str | None
    label: str
    run_dir: str
    job: dict[str, Any]
    state: str
    backend: str | None
    created_at: float

    def to_record(self) -> RunRecord:
        """The waiting run again, as the manager queues it (raises KeyError or ValueError for a job it cannot read)."""
        job = self.job
        tokenizer = tokenizer_from_dict(job["tokenizer"]) if job.get("tokenizer") else None
        return RunRecord(run_id=self.run_id, label=self.label, config=TrainConfig.from_dict(job["config"]),
                         text=job["text"], tokenizer=tokenizer, run_dir=Path(self.run_dir),
                         resume_from=Path(job["resume_from"]) if job.get("resume_from") else None,
                         created_at=self.created_at, owner=self.owner, batch=self.batch,
                         finetune_from=Path(job["finetune_from"]) if job.get("finetune_from") else None,
                         original_text=job.get("original_text"), gpus=int(job.get("gpus") or 1))


class QueueStore:
    """The `run_queue` table in one SQLite file; every call is its own short transaction, safe from any thread."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one writer at a time in this process (SQLite serialises the rest)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock, closing(self._connect()) as db, db:
            db.execute(sql, args)

    def add(self, run_id: str, owner: str, batch: str | None, label: str, run_dir: Path | str,
            job: dict[str, Any]) -> None:
        """Keep a run that was just queued (its job whole: it is all a restarted server has to start it from)."""
        self._write("INSERT INTO run_queue (run_id, owner, batch, label, run_dir, job, state, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
                    (run_id, owner, batch, label, str(run_dir), json.dumps(job), time.time()))

    def started(self, run_id: str, backend: str) -> None:
        """The run left the queue. A local run's row goes (its process dies with the server, and its folder tells
        what happened); a Ray run's stays, without its text, so a restarted server can follow it again."""
        if backend == "ray":
            self._write("UPDATE run_queue SET state = 'running', backend = ?, job = '{}' WHERE run_id = ?",
                        (backend, run_id))
        else:
            self.ended(run_id)

    def ended(self, run_id: str) -> None:
        self._write("DELETE FROM run_queue WHERE run_id = ?", (run_id,))

    def _rows(self, state: str) -> list[StoredRun]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT run_id, owner, batch, label, run_dir, job, state, backend, created_at "
                              "FROM run_queue WHERE state = ? ORDER BY seq", (state,)).fetchall()
        return [StoredRun(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]) for r in rows]

    def waiting(self) -> list[StoredRun]:
        """The runs that were waiting, oldest request first."""
        return self._rows("queued")

    def attached(self) -> list[StoredRun]:
        """The runs handed to Ray that have not been seen to end."""
        return self._rows("running")

    def find(self, run_id: str) -> StoredRun | None:
        with closing(self._connect()) as db:
            r = db.execute("SELECT run_id, owner, batch, label, run_dir, job, state, backend, created_at "
                           "FROM run_queue WHERE run_id = ?", (run_id,)).fetchone()
        return StoredRun(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]) if r else None
