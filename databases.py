"""How every layer reaches the one database a course server keeps: an SQLAlchemy engine for a URL, set up for it.

The learners' progress (course/progress.py) and the run queue (engine/runs/queue_store.py) live in one database, so
one backup holds both; this module is what they share, and it imports nothing of the project. SQLite (one learner,
`make run`) and PostgreSQL through psycopg 3 (a class) differ only here:

- **SQLite** runs in WAL mode (a reader and a writer at once) with a 30 s busy timeout, and a transaction opened by
  `writing` starts with `BEGIN IMMEDIATE`: it takes the write lock first, so a second writer waits for it instead of
  failing when it tries to upgrade a read lock halfway. Reads stay concurrent.
- **PostgreSQL** checks each pooled connection before use (`pool_pre_ping`), since a class's database may restart
  under a running server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, make_url


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, None for any other database.

    >>> sqlite_file("sqlite:////srv/course/progress.sqlite3"), sqlite_file("postgresql+psycopg://db/course")
    (PosixPath('/srv/course/progress.sqlite3'), None)
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise ValueError("the course's database must be a file or a server: an in-memory SQLite is lost per "
                         "connection")
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is made if it is missing."""
    path = sqlite_file(url)
    if path is None:
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # the driver starts no transaction of its own: `_on_begin` does
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One transaction that writes: committed at the end of the block, rolled back if it raises."""
    with engine.connect() as conn:
        conn = conn.execution_options(write=True)
        with conn.begin():
            yield conn
