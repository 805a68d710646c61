"""The learner's progress, in an embedded SQLite database that a crash or a second tab cannot corrupt.

Why SQLite: one file, no server, transactional. WAL mode lets a reader and a writer work at once, and every write
is its own transaction, so an answer is on disk the moment it is given. The database path comes from the
`LLM_COURSE_DB` environment variable, defaulting to `data/progress.sqlite3`. `ProgressStore` is the small interface
the UI uses; a server deployment could implement it over PostgreSQL instead.

What is kept per learner: current card per lesson, every quiz answer as given (history, not just the last one),
reflections (stored as answers), lesson completion, and a few named values (`facts`) such as the id of their
training run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paths

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS learners (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, created_at REAL NOT NULL,
    last_seen REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS positions (
    learner_id INTEGER NOT NULL, lesson_id TEXT NOT NULL, card INTEGER NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (learner_id, lesson_id));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY, learner_id INTEGER NOT NULL, quiz_id TEXT NOT NULL, question_id TEXT NOT NULL,
    response TEXT NOT NULL, correct INTEGER, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS answers_by_quiz ON answers (learner_id, quiz_id, question_id, id);
CREATE TABLE IF NOT EXISTS completions (
    learner_id INTEGER NOT NULL, lesson_id TEXT NOT NULL, completed_at REAL NOT NULL,
    PRIMARY KEY (learner_id, lesson_id));
CREATE TABLE IF NOT EXISTS facts (
    learner_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (learner_id, key));
"""


@dataclass(frozen=True)
class Learner:
    id: int
    name: str


@dataclass(frozen=True)
class Answer:
    question_id: str
    response: Any
    correct: bool | None  # None: not graded (reflections)
    created_at: float


@dataclass(frozen=True)
class QuestionRecord:
    """Everything the store knows about one question for one learner."""

    attempts: int
    first_correct: bool | None
    ever_correct: bool | None
    last: Answer | None


class ProgressStore:
    """Thread-safe, one connection per thread, one transaction per write."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else paths.progress_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered_from: Path | None = None
        self._local = threading.local()
        try:
            self._create_tables()
        except sqlite3.DatabaseError:
            self._recover()

    # -- plumbing

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _recover(self) -> None:
        """The file is not a database (corrupted or foreign): keep it aside, never delete it, and start fresh."""
        self.close()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        self.path.rename(aside)
        for suffix in ("-wal", "-shm"):
            side = Path(str(self.path) + suffix)
            if side.exists():
                side.rename(Path(str(aside) + suffix))
        self.recovered_from = aside
        self._create_tables()

    def _create_tables(self) -> None:
        with self._tx() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- learners

    def learners(self) -> list[Learner]:
        rows = self._connect().execute("SELECT id, name FROM learners ORDER BY name COLLATE NOCASE").fetchall()
        return [Learner(*r) for r in rows]

    def get_or_create_learner(self, name: str) -> Learner:
        """The learner of this name, created if new. Names are compared as they look: NFKC-normalised (a full-width
        "Ａda" is "Ada"), spaces collapsed, case ignored; invisible and control characters are refused, so no one can
        make a profile that looks like another's ("Ada" with a zero-width space, or a right-to-left override)."""
        name = " ".join(unicodedata.normalize("NFKC", name).split())
        if not name or len(name) > 40:
            raise ValueError("a learner name needs 1 to 40 characters")
        hidden = next((ch for ch in name if unicodedata.category(ch)[0] == "C"), None)
        if hidden is not None:
            raise ValueError(f"a learner name cannot hold invisible or control characters (U+{ord(hidden):04X}): "
                             "type it again without pasting")
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO learners (name, created_at) VALUES (?, ?)", (name, time.time()))
            row = db.execute("SELECT id, name FROM learners WHERE name = ?", (name,)).fetchone()
        return Learner(*row)

    def touch_learner(self, learner_id: int) -> None:
        """Remember who used the course last, so a fresh tab or a reload opens their progress."""
        with self._tx() as db:
            db.execute("UPDATE learners SET last_seen = ? WHERE id = ?", (time.time(), learner_id))

    def last_learner(self) -> Learner | None:
        row = self._connect().execute("SELECT id, name FROM learners ORDER BY last_seen DESC, id LIMIT 1").fetchone()
        return Learner(*row) if row else None

    def learner(self, learner_id: int) -> Learner | None:
        row = self._connect().execute("SELECT id, name FROM learners WHERE id = ?", (learner_id,)).fetchone()
        return Learner(*row) if row else None

    # -- position in a lesson

    def set_card(self, learner_id: int, lesson_id: str, card: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO positions VALUES (?, ?, ?, ?) ON CONFLICT (learner_id, lesson_id) "
                "DO UPDATE SET card = excluded.card, updated_at = excluded.updated_at",
                (learner_id, lesson_id, card, time.time()),
            )

    def card(self, learner_id: int, lesson_id: str) -> int:
        row = self._connect().execute(
            "SELECT card FROM positions WHERE learner_id = ? AND lesson_id = ?", (learner_id, lesson_id)
        ).fetchone()
        return row[0] if row else 0

    def positions(self, learner_id: int) -> dict[str, int]:
        rows = self._connect().execute("SELECT lesson_id, card FROM positions WHERE learner_id = ?", (learner_id,))
        return dict(rows.fetchall())

    # -- answers

    def record_answer(self, learner_id: int, quiz_id: str, question_id: str, response: Any, correct: bool | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (learner_id, quiz_id, question_id, response, correct, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (learner_id, quiz_id, question_id, json.dumps(response), None if correct is None else int(correct), time.time()),
            )

    def quiz_records(self, learner_id: int, quiz_id: str) -> dict[str, QuestionRecord]:
        rows = self._connect().execute(
            "SELECT question_id, response, correct, created_at FROM answers WHERE learner_id = ? AND quiz_id = ? ORDER BY id",
            (learner_id, quiz_id),
        ).fetchall()
        grouped: dict[str, list[Answer]] = {}
        for qid, resp, correct, at in rows:
            grouped.setdefault(qid, []).append(Answer(qid, json.loads(resp), None if correct is None else bool(correct), at))
        out = {}
        for qid, answers in grouped.items():
            graded = [a.correct for a in answers if a.correct is not None]
            out[qid] = QuestionRecord(
                attempts=len(answers),
                first_correct=graded[0] if graded else None,
                ever_correct=any(graded) if graded else None,
                last=answers[-1],
            )
        return out

    def answered(self, learner_id: int) -> set[tuple[str, str]]:
        """(quiz id, question id) of every question the learner has answered at least once."""
        rows = self._connect().execute(
            "SELECT DISTINCT quiz_id, question_id FROM answers WHERE learner_id = ?", (learner_id,)
        ).fetchall()
        return {(quiz_id, question_id) for quiz_id, question_id in rows}

    # -- completion and facts

    def mark_complete(self, learner_id: int, lesson_id: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO completions VALUES (?, ?, ?)", (learner_id, lesson_id, time.time()))

    def completed(self, learner_id: int) -> set[str]:
        rows = self._connect().execute("SELECT lesson_id FROM completions WHERE learner_id = ?", (learner_id,))
        return {r[0] for r in rows.fetchall()}

    def set_fact(self, learner_id: int, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO facts VALUES (?, ?, ?, ?) ON CONFLICT (learner_id, key) "
                "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (learner_id, key, json.dumps(value), time.time()),
            )

    def fact(self, learner_id: int, key: str, default: Any = None) -> Any:
        row = self._connect().execute(
            "SELECT value FROM facts WHERE learner_id = ? AND key = ?", (learner_id, key)
        ).fetchone()
        return json.loads(row[0]) if row else default

    def facts_with_prefix(self, learner_id: int, prefix: str) -> dict[str, Any]:
        """Every fact of this learner whose key starts with `prefix`, e.g. all their runs ("run." -> {"run.main":
        {...}}). Matched with substr, not LIKE, so "_" and "%" in a prefix are plain characters."""
        rows = self._connect().execute(
            "SELECT key, value FROM facts WHERE learner_id = ? AND substr(key, 1, ?) = ? ORDER BY key",
            (learner_id, len(prefix), prefix),
        ).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def facts_of_everyone_with_prefix(self, prefix: str) -> list[tuple[int, str, Any]]:
        """(learner id, key, value) of every learner's facts starting with `prefix`: what retention must keep."""
        rows = self._connect().execute(
            "SELECT learner_id, key, value FROM facts WHERE substr(key, 1, ?) = ? ORDER BY learner_id, key",
            (len(prefix), prefix),
        ).fetchall()
        return [(lid, k, json.loads(v)) for lid, k, v in rows]

    # -- export and reset

    def export(self, learner_id: int) -> dict[str, Any]:
        db = self._connect()
        name = db.execute("SELECT name FROM learners WHERE id = ?", (learner_id,)).fetchone()
        answers = db.execute(
            "SELECT quiz_id, question_id, response, correct, created_at FROM answers WHERE learner_id = ? ORDER BY id",
            (learner_id,),
        ).fetchall()
        return {
            "learner": name[0] if name else None,
            "exported_at": time.time(),
            "positions": self.positions(learner_id),
            "completed": sorted(self.completed(learner_id)),
            "answers": [
                {"quiz": q, "question": qq, "response": json.loads(r), "correct": None if c is None else bool(c), "at": t}
                for q, qq, r, c, t in answers
            ],
            "facts": {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM facts WHERE learner_id = ?", (learner_id,))},
        }

    def reset(self, learner_id: int) -> None:
        """Forget this learner's progress (the learner's name stays), all in one transaction."""
        with self._tx() as db:
            for table in ("positions", "answers", "completions", "facts"):
                db.execute(f"DELETE FROM {table} WHERE learner_id = ?", (learner_id,))
