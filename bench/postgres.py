"""A throwaway schema in the machine's PostgreSQL, for the class benchmarks and the tests (tests/postgres.py).

Every development machine and CI run PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`); a class keeps its
progress in such a server. `throwaway_schema()` gives a URL whose connections work in a fresh, empty schema (the
URL sets the connection's search_path), dropped afterwards, so nothing is left behind and no second database is
needed. $LLM_COURSE_TEST_POSTGRES names another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN_URL = os.environ.get("LLM_COURSE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def unreachable() -> str | None:
    """Why the server cannot be used, or None when it can."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as err:  # any failure to connect means: no server here
        return f"no PostgreSQL at {ADMIN_URL} ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None


@contextmanager
def throwaway_schema() -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema of the server; the schema is dropped after."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
