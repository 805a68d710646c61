"""A real PostgreSQL for the tests: one throwaway schema per test in the machine's server.

Every development machine and CI run PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`); the tests use it
as a class would, through a `postgresql+psycopg://` URL. Each test gets its own schema (the URL sets the connection's
search_path to it), dropped afterwards, so tests never see each other's rows and need no second database.

Where no server answers, a learner's laptop say, the tests that need it skip and say why. CI sets
LLM_COURSE_REQUIRE_SERVICES=1 (.ci/run): there a missing server fails the test instead, so it cannot pass unrun.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

ADMIN_URL = os.environ.get("LLM_COURSE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRED_VAR = "LLM_COURSE_REQUIRE_SERVICES"


@cache
def unreachable() -> str | None:
    """Why the test server cannot be used, or None when it can."""
    try:
        from sqlalchemy import create_engine, text
    except ImportError as err:  # pragma: no cover - sqlalchemy is a runtime requirement
        return f"sqlalchemy is missing: {err}"
    try:
        engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as err:  # any failure to connect means: no server here
        return f"no PostgreSQL at {ADMIN_URL} ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None


def need_postgres() -> None:
    """Skip the calling test where no server answers; fail it where the run requires the services (CI)."""
    why = unreachable()
    if why is None:
        return
    if os.environ.get(REQUIRED_VAR):
        pytest.fail(f"{why}; {REQUIRED_VAR} is set, so the PostgreSQL tests must run")
    pytest.skip(f"{why}: the PostgreSQL tests run where a server is (every development machine and CI)")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema of the test server; the schema is dropped after."""
    from sqlalchemy import create_engine, text

    need_postgres()
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
