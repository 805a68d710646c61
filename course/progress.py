"""The learner's progress, in a database that a crash or a second tab cannot corrupt: SQLite for one learner,
PostgreSQL for a class.

Why a database: every write is its own transaction, so an answer is stored the moment it is given. The database
comes from `paths.database_url()`: `$LLM_COURSE_DATABASE_URL` (or `$COURSE_DATABASE_URL`) when set, else the SQLite
file `$LLM_COURSE_DB`, defaulting to `data/progress.sqlite3`. SQLAlchemy speaks both dialects, Alembic keeps the
schema (course/progress_db.py, course/migrations), and `ProgressStore` is the small interface the UI uses.

What is kept per learner: current card per lesson, every quiz answer as given (history, not just the last one),
reflections (stored as answers), lesson completion, and a few named values (`facts`) such as the id of their
training run.
"""

from __future__ import annotations

import json
import time
import unicodedata
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

import paths
from course.progress_db import open_database
from course.progress_schema import (
    LEARNER_TABLES,
    answers,
    completions,
    facts,
    learners,
    name_key,
    positions,
    signed_in_key,
)
from databases import writing


@dataclass(frozen=True)
class Learner:
    id: int
    name: str


@dataclass(frozen=True)
class Member:
    """A learner as the instructor's roster sees them: who, and when they were last here."""

    id: int
    name: str
    email: str | None  # from the identity provider (class mode); None for a local profile
    signed_in: bool  # a person who signed in, not a local profile
    created_at: float
    last_seen: float


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
    """Thread-safe: a pool of connections, one short transaction per call."""

    def __init__(self, where: Path | str | None = None):
        """`where`: a database URL ("postgresql+psycopg://...", "sqlite:///..."), a SQLite file's path, or None for
        `paths.database_url()`."""
        if where is None:
            url = paths.database_url()
        elif "://" in str(where):
            url = str(where)
        else:
            url = f"sqlite:///{Path(where)}"
        self._db = open_database(url)
        self._engine = self._db.engine
        self._upsert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert

    @property
    def path(self) -> Path | None:
        """The SQLite file, None for a database server."""
        return self._db.sqlite_path

    @property
    def url(self) -> str:
        """The database's URL with no password in it (safe to show or log)."""
        return self._db.url

    @property
    def recovered_from(self) -> Path | None:
        """Where an unreadable SQLite file was moved when this store opened, None if none was."""
        return self._db.recovered_from

    # -- plumbing

    def _tx(self) -> AbstractContextManager[Connection]:
        return writing(self._engine)

    def _read(self, statement) -> list:
        with self._engine.connect() as conn:
            return list(conn.execute(statement))

    def close(self) -> None:
        self._engine.dispose()

    # -- learners

    def learners(self) -> list[Learner]:
        return [Learner(*r) for r in self._read(select(learners.c.id, learners.c.name).order_by(learners.c.name_key))]

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
        key = name_key(name)
        with self._tx() as db:
            db.execute(self._upsert(learners).values(name=name, name_key=key, created_at=time.time())
                       .on_conflict_do_nothing(index_elements=["name_key"]))
            row = db.execute(select(learners.c.id, learners.c.name).where(learners.c.name_key == key)).one()
        return Learner(*row)

    def signed_in_learner(self, subject: str, email: str | None = None, name: str | None = None) -> Learner:
        """The learner the identity provider's `subject` names (class mode), made at their first sign-in. Their
        shown name and email follow the provider's latest claims; the profile is found by subject alone, never by
        name, so two people with one name stay two learners."""
        if not subject:
            raise ValueError("a signed-in learner needs the identity provider's subject")
        shown = _display_name(name or email or subject)
        with self._tx() as db:
            db.execute(self._upsert(learners).values(name=shown, name_key=signed_in_key(subject), subject=subject,
                                                     email=email, created_at=time.time())
                       .on_conflict_do_nothing(index_elements=["name_key"]))
            db.execute(update(learners).where(learners.c.subject == subject).values(name=shown, email=email))
            row = db.execute(select(learners.c.id, learners.c.name).where(learners.c.subject == subject)).one()
        return Learner(*row)

    def members(self) -> list[Member]:
        """Every learner, for an instructor's roster, in name order."""
        rows = self._read(select(learners.c.id, learners.c.name, learners.c.email, learners.c.subject.is_not(None),
                                 learners.c.created_at, learners.c.last_seen).order_by(learners.c.name_key))
        return [Member(i, n, e, bool(s), c, seen) for i, n, e, s, c, seen in rows]

    def touch_learner(self, learner_id: int) -> None:
        """Remember who used the course last, so a fresh tab or a reload opens their progress."""
        with self._tx() as db:
            db.execute(update(learners).where(learners.c.id == learner_id).values(last_seen=time.time()))

    def last_learner(self) -> Learner | None:
        rows = self._read(select(learners.c.id, learners.c.name)
                          .order_by(learners.c.last_seen.desc(), learners.c.id).limit(1))
        return Learner(*rows[0]) if rows else None

    def learner(self, learner_id: int) -> Learner | None:
        rows = self._read(select(learners.c.id, learners.c.name).where(learners.c.id == learner_id))
        return Learner(*rows[0]) if rows else None

    # -- position in a lesson

    def set_card(self, learner_id: int, lesson_id: str, card: int) -> None:
        row = self._upsert(positions).values(learner_id=learner_id, lesson_id=lesson_id, card=card,
                                             updated_at=time.time())
        with self._tx() as db:
            db.execute(row.on_conflict_do_update(index_elements=["learner_id", "lesson_id"],
                                                 set_={"card": row.excluded.card,
                                                       "updated_at": row.excluded.updated_at}))

    def card(self, learner_id: int, lesson_id: str) -> int:
        rows = self._read(select(positions.c.card).where(positions.c.learner_id == learner_id,
                                                         positions.c.lesson_id == lesson_id))
        return rows[0][0] if rows else 0

    def positions(self, learner_id: int) -> dict[str, int]:
        return dict(self._read(select(positions.c.lesson_id, positions.c.card)
                               .where(positions.c.learner_id == learner_id)))

    # -- answers

    def record_answer(self, learner_id: int, quiz_id: str, question_id: str, response: Any, correct: bool | None) -> None:
        with self._tx() as db:
            db.execute(insert(answers).values(
                learner_id=learner_id, quiz_id=quiz_id, question_id=question_id, response=json.dumps(response),
                correct=None if correct is None else int(correct), created_at=time.time()))

    def quiz_records(self, learner_id: int, quiz_id: str) -> dict[str, QuestionRecord]:
        rows = self._read(select(answers.c.question_id, answers.c.response, answers.c.correct, answers.c.created_at)
                          .where(answers.c.learner_id == learner_id, answers.c.quiz_id == quiz_id)
                          .order_by(answers.c.id))
        grouped: dict[str, list[Answer]] = {}
        for qid, resp, correct, at in rows:
            grouped.setdefault(qid, []).append(Answer(qid, json.loads(resp), None if correct is None else bool(correct), at))
        out = {}
        for qid, given in grouped.items():
            graded = [a.correct for a in given if a.correct is not None]
            out[qid] = QuestionRecord(
                attempts=len(given),
                first_correct=graded[0] if graded else None,
                ever_correct=any(graded) if graded else None,
                last=given[-1],
            )
        return out

    def answered(self, learner_id: int) -> set[tuple[str, str]]:
        """(quiz id, question id) of every question the learner has answered at least once."""
        rows = self._read(select(answers.c.quiz_id, answers.c.question_id).distinct()
                          .where(answers.c.learner_id == learner_id))
        return {(quiz_id, question_id) for quiz_id, question_id in rows}

    # -- completion and facts

    def mark_complete(self, learner_id: int, lesson_id: str) -> None:
        with self._tx() as db:
            db.execute(self._upsert(completions).values(learner_id=learner_id, lesson_id=lesson_id,
                                                        completed_at=time.time())
                       .on_conflict_do_nothing(index_elements=["learner_id", "lesson_id"]))

    def completed(self, learner_id: int) -> set[str]:
        return {r[0] for r in self._read(select(completions.c.lesson_id).where(completions.c.learner_id == learner_id))}

    def set_fact(self, learner_id: int, key: str, value: Any) -> None:
        row = self._upsert(facts).values(learner_id=learner_id, key=key, value=json.dumps(value),
                                         updated_at=time.time())
        with self._tx() as db:
            db.execute(row.on_conflict_do_update(index_elements=["learner_id", "key"],
                                                 set_={"value": row.excluded.value,
                                                       "updated_at": row.excluded.updated_at}))

    def fact(self, learner_id: int, key: str, default: Any = None) -> Any:
        rows = self._read(select(facts.c.value).where(facts.c.learner_id == learner_id, facts.c.key == key))
        return json.loads(rows[0][0]) if rows else default

    def facts_with_prefix(self, learner_id: int, prefix: str) -> dict[str, Any]:
        """Every fact of this learner whose key starts with `prefix`, e.g. all their runs ("run." -> {"run.main":
        {...}}). Matched with substr, not LIKE, so "_" and "%" in a prefix are plain characters."""
        rows = self._read(select(facts.c.key, facts.c.value)
                          .where(facts.c.learner_id == learner_id, _starts_with(facts.c.key, prefix))
                          .order_by(facts.c.key))
        return {k: json.loads(v) for k, v in rows}

    def facts_of_everyone_with_prefix(self, prefix: str) -> list[tuple[int, str, Any]]:
        """(learner id, key, value) of every learner's facts starting with `prefix`: what retention must keep."""
        rows = self._read(select(facts.c.learner_id, facts.c.key, facts.c.value)
                          .where(_starts_with(facts.c.key, prefix)).order_by(facts.c.learner_id, facts.c.key))
        return [(lid, k, json.loads(v)) for lid, k, v in rows]

    # -- the whole class (an instructor's view)

    def all_positions(self) -> list[tuple[int, str, int, float]]:
        """(learner id, lesson id, card, updated at) of every learner."""
        return [tuple(r) for r in self._read(select(positions.c.learner_id, positions.c.lesson_id, positions.c.card,
                                                    positions.c.updated_at))]

    def all_completions(self) -> list[tuple[int, str, float]]:
        """(learner id, lesson id, completed at) of every learner."""
        return [tuple(r) for r in self._read(select(completions.c.learner_id, completions.c.lesson_id,
                                                    completions.c.completed_at))]

    def all_answers(self) -> list[tuple[int, str, str, Any, bool | None, float]]:
        """(learner id, quiz id, question id, response, correct, at) of every answer anyone gave, in order given."""
        rows = self._read(select(answers.c.learner_id, answers.c.quiz_id, answers.c.question_id, answers.c.response,
                                 answers.c.correct, answers.c.created_at).order_by(answers.c.id))
        return [(lid, q, qq, json.loads(r), None if c is None else bool(c), t) for lid, q, qq, r, c, t in rows]

    # -- export, reset and deletion

    def export(self, learner_id: int) -> dict[str, Any]:
        learner = self.learner(learner_id)
        given = self._read(select(answers.c.quiz_id, answers.c.question_id, answers.c.response, answers.c.correct,
                                  answers.c.created_at).where(answers.c.learner_id == learner_id).order_by(answers.c.id))
        kept = self._read(select(facts.c.key, facts.c.value).where(facts.c.learner_id == learner_id))
        return {
            "learner": learner.name if learner else None,
            "exported_at": time.time(),
            "positions": self.positions(learner_id),
            "completed": sorted(self.completed(learner_id)),
            "answers": [
                {"quiz": q, "question": qq, "response": json.loads(r), "correct": None if c is None else bool(c), "at": t}
                for q, qq, r, c, t in given
            ],
            "facts": {k: json.loads(v) for k, v in kept},
        }

    def reset(self, learner_id: int) -> None:
        """Forget this learner's progress (the learner's name stays), all in one transaction."""
        with self._tx() as db:
            for table in LEARNER_TABLES:
                db.execute(delete(table).where(table.c.learner_id == learner_id))

    def delete_learner(self, learner_id: int) -> None:
        """Forget the learner entirely: every row of theirs and their profile, in one transaction."""
        with self._tx() as db:
            for table in LEARNER_TABLES:
                db.execute(delete(table).where(table.c.learner_id == learner_id))
            db.execute(delete(learners).where(learners.c.id == learner_id))


def _display_name(claimed: str) -> str:
    """A provider's name claim made fit to show: NFKC, spaces collapsed, invisible and control characters dropped,
    at most 60 characters."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", claimed) if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())[:60] or "Learner"


def _starts_with(column, prefix: str):
    return func.substr(column, 1, len(prefix)) == prefix
