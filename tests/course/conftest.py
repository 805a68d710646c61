"""The progress store's tests run against both databases the course supports: a SQLite file and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty progress database's URL: a SQLite file, then a PostgreSQL schema (tests/postgres.py)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'p.sqlite3'}"
        return
    with postgres_schema() as url:
        yield url
