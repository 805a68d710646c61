"""Opening the progress database: one SQLAlchemy engine per URL, brought to the newest schema by Alembic.

The URL is `paths.database_url()`: the SQLite file `data/progress.sqlite3` for one learner, PostgreSQL for a class
(docs/deploy.md); `databases.make_engine` sets each up. Opening also:

- moves a SQLite file that is not a database aside, never deleting it, and makes a fresh one (`recovered_from`
  says where it went);
- on PostgreSQL, takes an advisory lock while migrating, so two servers that start at once migrate once.

Migrations live in course/migrations (Alembic); a database made before them (today's tables, no version table) is
upgraded in place, every row kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, exc, make_url, text

from databases import make_engine, sqlite_file, writing

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 7_201_100  # the advisory lock key PostgreSQL servers migrate under (any fixed number)


@dataclass
class Database:
    """An open progress database: its engine, its URL with no password, and the SQLite file set aside as unreadable
    while opening it (None if nothing was)."""

    engine: Engine
    url: str
    sqlite_path: Path | None
    recovered_from: Path | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.sqlite_path is not None


def _alembic_config(connection: Connection | None = None):
    """Alembic's settings in code (alembic.ini is only for a developer's command line). Alembic's command layer is
    imported here, not at the top: it is needed only when a database is behind, and a server's first page waits on
    every import."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest migration's revision id (read once: the scripts do not change while the server runs)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "course/migrations holds no revision"
    return head


def schema_revision(engine: Engine) -> str | None:
    """The revision this database is at; None for an empty database or one made before migrations."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(database: Database) -> None:
    if schema_revision(database.engine) == head_revision():
        return
    with writing(database.engine) as conn:
        if not database.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        from alembic import command

        command.upgrade(_alembic_config(conn), "head")


def _set_aside(path: Path) -> Path:
    """Move an unreadable SQLite file (and its WAL files) aside under a dated name; return where it went."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.rename(Path(f"{aside}{suffix}"))
    return aside


def open_database(url: str) -> Database:
    """Connect to `url`, migrate it to the newest schema, and return it. A SQLite file's folder is made if missing."""
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url)
    database = Database(make_engine(url), shown, path)
    try:
        _upgrade(database)
    except exc.DatabaseError as err:
        if path is None or ("not a database" not in str(err) and "malformed" not in str(err)):
            raise
        database.engine.dispose()
        aside = _set_aside(path)
        database = Database(make_engine(url), shown, path, recovered_from=aside)
        _upgrade(database)
    return database
