"""A real PostgreSQL for the tests: one throwaway schema per test in the machine's server (bench/postgres.py).

Every development machine and CI run PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`); the tests use it
as a class would, through a `postgresql+psycopg://` URL, each in a schema of its own that is dropped afterwards.

Where no server answers, a learner's laptop say, the tests that need it skip and say why. CI sets
LLM_COURSE_REQUIRE_SERVICES=1 (.ci/run): there a missing server fails the test instead, so it cannot pass unrun.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

from bench import postgres

REQUIRED_VAR = "LLM_COURSE_REQUIRE_SERVICES"


@cache
def unreachable() -> str | None:
    """Why the test server cannot be used, or None when it can (asked once per test process)."""
    return postgres.unreachable()


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
    need_postgres()
    with postgres.throwaway_schema() as url:
        yield url
