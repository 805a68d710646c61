"""Alembic's entry point for the progress database (course/progress_db.py runs it in process; `alembic upgrade
head` runs it from the command line, against $LLM_COURSE_DATABASE_URL or the SQLite file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import paths
from course.progress_schema import metadata
from databases import make_engine


def _ours(name: str | None, type_: str, _parent: dict) -> bool:
    """The run queue's table is the engine's own (engine/runs/queue_store.py): a new revision leaves it alone."""
    return not (type_ == "table" and name == "run_queue")


def _migrate(connection: Connection) -> None:
    # render_as_batch: on SQLite, which cannot alter a column in place, a change is made by copying the table.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      include_name=_ours)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("The course's migrations run against a live database: drop --sql and give a database URL.")
given = context.config.attributes.get("connection")
if given is not None:
    _migrate(given)
else:
    with make_engine(context.config.get_main_option("sqlalchemy.url") or paths.database_url()).begin() as conn:
        _migrate(conn)
