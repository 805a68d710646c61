"""The progress database's schema comes from Alembic's migrations (course/migrations): a database made before them
upgrades in place without losing a row, the migrated tables are the ones the store queries, and two servers that
start together on one empty PostgreSQL database migrate it once."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from course.progress import ProgressStore
from course.progress_db import head_revision, schema_revision
from course.progress_schema import metadata

# Made by the course's progress store as it was before migrations (commit 94bf626), and by the run queue's store:
# learners "Ada", "Straße" and "STRASSE" (one name to a casefolding eye, two to SQLite's NOCASE), Ada's card, two
# tries at one question and a reflection, a completed lesson, two facts, and the run_queue table.
BEFORE = Path(__file__).parent / "fixtures" / "progress-before-migrations.sqlite3"


def _rows(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def test_a_database_from_before_migrations_upgrades_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "progress.sqlite3"
    shutil.copy(BEFORE, path)  # a copy: the fixture stays as the old code left it
    before = {t: _rows(path, t) for t in ("positions", "answers", "completions", "facts", "run_queue")}
    learners_before = _rows(path, "learners")
    assert len(learners_before) == 3 and sum(len(r) for r in before.values()) > 0

    store = ProgressStore(path)
    assert schema_revision(store._engine) == head_revision()
    assert {t: _rows(path, t) for t in before} == before  # every row of every other table, unchanged
    after = {row[0]: row for row in _rows(path, "learners")}
    for learner_id, name, created_at, last_seen in learners_before:  # same ids, names and times, a key beside them
        assert after[learner_id][:4] == (learner_id, name, created_at, last_seen)
    keys = {after[i][1]: after[i][4] for i in after}
    assert keys["Ada"] == "ada" and keys["Straße"] == "strasse" and keys["STRASSE"] == "strasse#3"

    ada = store.get_or_create_learner("ADA")  # the store reads the old rows as its own
    assert ada.id == 1 and ada.name == "Ada"
    assert store.card(ada.id, "tokenization") == 4 and store.completed(ada.id) == {"tokenization"}
    record = store.quiz_records(ada.id, "quiz-tokens")["q1"]
    assert record.attempts == 2 and record.first_correct is False and record.ever_correct is True
    assert store.fact(ada.id, "run.main") == {"run_id": "r1"}
    assert store.last_learner().name == "STRASSE"
    store.close()
    ProgressStore(path).close()  # opening it again changes nothing
    assert {t: _rows(path, t) for t in before} == before


def test_the_migrated_tables_are_the_ones_the_store_queries(database_url: str) -> None:
    ProgressStore(database_url).close()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_two_servers_starting_together_migrate_an_empty_database_once(database_url: str) -> None:
    stores: list[ProgressStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(ProgressStore(database_url))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ada = stores[0].get_or_create_learner("Ada")
    assert all(s.learner(ada.id) == ada for s in stores)
    for s in stores:
        s.close()
