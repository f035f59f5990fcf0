"""Shared fixtures: real databases for the ledger's tests.

``pg_url`` is a fresh PostgreSQL database on the server at ``VENUE_TEST_PG_URL`` (default: the
local server, role postgres), created for the test and dropped after it. When the server cannot
be reached the test is skipped on a developer's machine, and fails when ``CI`` is set: the
ledger is tested against the real server, never a mock.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get(
    "VENUE_TEST_PG_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/test"
)


def _admin_connect() -> object:
    import psycopg

    url = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _pg_unavailable(exc: Exception) -> None:
    message = f"PostgreSQL at {PG_URL} is not reachable: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL (SQLAlchemy form, psycopg 3 driver) of a new, empty database, dropped afterwards."""
    try:
        admin = _admin_connect()
    except Exception as exc:
        _pg_unavailable(exc)
    name = f"venue_t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(  # type: ignore[attr-defined]
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        )
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))
