"""The run queue on disk: every waiting run, and every run handed to Ray, kept in the progress database.

A run waiting for a slot exists only in the server's memory otherwise, so a restart would drop a class's queue.
Each waiting run is one row holding its whole job (config, text, tokenizer: what `engine.runs.worker.make_job`
writes), in the order it was asked for; the row goes when the run ends. A server that starts again reads the rows
back (`waiting`) and queues them in the same order; runs it had handed to Ray (`attached`) it follows again.

The table lives beside the learners' progress (the same database, `paths.database_url()`: a SQLite file, or the
class's PostgreSQL, where every course server sees one queue), so one backup holds both. The engine does not import
the course's progress store: this module speaks SQL (SQLAlchemy Core) to its own table only.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    exc,
    insert,
    inspect,
    select,
    update,
)

from databases import make_engine, sqlite_file, writing
from engine.runs.executors import RunRecord
from engine.train.config import TrainConfig
from engine.transform.tokenization import tokenizer_from_dict

metadata = MetaData()
run_queue = Table(
    "run_queue", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # the order the runs were asked for
    Column("run_id", Text, nullable=False, unique=True),
    Column("owner", Text, nullable=False),
    Column("batch", Text),
    Column("label", Text, nullable=False),
    Column("run_dir", Text, nullable=False),
    Column("job", Text, nullable=False),  # JSON: what engine.runs.worker.make_job writes
    Column("state", Text, nullable=False),  # "queued", or "running" for a run handed to Ray
    Column("backend", Text),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,  # SQLite never reuses a seq, so a new row always sorts last
)
_COLUMNS = (run_queue.c.run_id, run_queue.c.owner, run_queue.c.batch, run_queue.c.label, run_queue.c.run_dir,
            run_queue.c.job, run_queue.c.state, run_queue.c.backend, run_queue.c.created_at)


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
                         original_text=job.get("original_text"), gpus=int(job.get("gpus") or 1),
                         processes=int(job.get("processes") or 1))


SERVER_ID_VAR = "LLM_COURSE_SERVER_ID"  # which course server this is, where several share one database


def server_identity() -> str:
    """This course server's name in the queue: $LLM_COURSE_SERVER_ID, else its host and Streamlit port (the
    same after a restart, different for a second server on the same machine)."""
    if given := os.environ.get(SERVER_ID_VAR):
        return given
    port = os.environ.get("STREAMLIT_SERVER_PORT", "")
    if "--server.port" in sys.argv[:-1]:
        port = sys.argv[sys.argv.index("--server.port") + 1]
    return f"{socket.gethostname()}:{port or 8501}"


class QueueStore:
    """The `run_queue` table in the server's database; every call is its own short transaction, safe from any thread.

    `where` is a database URL (`paths.database_url()`: PostgreSQL for a class) or a SQLite file's path. The table
    is the engine's own, made here when missing; the learners' tables beside it are the course's (Alembic).

    Several course servers may share the database (a class on PostgreSQL). Each row names the server that queued
    it (`server`, kept in its job), and a restarted server takes back only its own waiting runs: another server's
    are still queued there. Runs on Ray (`attached`) any server may follow."""

    def __init__(self, where: Path | str, server: str | None = None) -> None:
        self.server = server or server_identity()
        self.url = str(where) if "://" in str(where) else f"sqlite:///{Path(where)}"
        self._engine = make_engine(self.url)
        try:
            metadata.create_all(self._engine, checkfirst=True)
        except exc.DatabaseError:  # another server made it between the check and the create
            if not inspect(self._engine).has_table("run_queue"):
                raise

    @property
    def owner(self) -> str:
        """The database as a runs folder's owner marker names it: the SQLite file, or the URL without password."""
        path = sqlite_file(self.url)
        return str(path) if path is not None else self.url

    def add(self, run_id: str, owner: str, batch: str | None, label: str, run_dir: Path | str,
            job: dict[str, Any]) -> None:
        """Keep a run that was just queued (its job whole: it is all a restarted server has to start it from)."""
        with writing(self._engine) as db:
            db.execute(insert(run_queue).values(run_id=run_id, owner=owner, batch=batch, label=label,
                                                run_dir=str(run_dir), job=json.dumps({**job, "server": self.server}),
                                                state="queued",
                                                created_at=time.time()))

    def started(self, run_id: str, backend: str) -> None:
        """The run left the queue. A local run's row goes (its process dies with the server, and its folder tells
        what happened); a Ray run's stays, without its text, so a restarted server can follow it again."""
        if backend == "ray":
            with writing(self._engine) as db:
                db.execute(update(run_queue).where(run_queue.c.run_id == run_id)
                           .values(state="running", backend=backend, job="{}"))
        else:
            self.ended(run_id)

    def ended(self, run_id: str) -> None:
        with writing(self._engine) as db:
            db.execute(delete(run_queue).where(run_queue.c.run_id == run_id))

    def _select(self, condition) -> list[StoredRun]:
        with self._engine.connect() as db:
            rows = db.execute(select(*_COLUMNS).where(condition).order_by(run_queue.c.seq)).all()
        return [StoredRun(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]) for r in rows]

    def waiting(self) -> list[StoredRun]:
        """The runs this server had waiting, oldest request first (rows from before servers were named count as
        this server's)."""
        return [r for r in self._select(run_queue.c.state == "queued") if r.job.get("server", self.server) == self.server]

    def attached(self) -> list[StoredRun]:
        """The runs handed to Ray that have not been seen to end."""
        return self._select(run_queue.c.state == "running")

    def find(self, run_id: str) -> StoredRun | None:
        found = self._select(run_queue.c.run_id == run_id)
        return found[0] if found else None

    def close(self) -> None:
        self._engine.dispose()
