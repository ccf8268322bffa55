"""The store's fixtures: a real PostgreSQL server (Debian's package, a throwaway cluster
on a port of the suite's own) and SQLite files; store tests run against both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from harness.postgres import LocalPostgres, binaries
from streams.store.db import StoreSettings, migrate, open_engine

# one server per pytest-xdist worker (make test runs test files on several): ten ports
# apart, the outage tests' own servers on the ports just above
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
PG_PORT = int(os.environ.get("TOCSIN_TEST_PG_PORT", "15441")) + 10 * _WORKER


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    if binaries() is None:
        pytest.skip("PostgreSQL is not installed: `make peers` installs `postgresql`")
    pg = LocalPostgres(PG_PORT).start()
    yield pg
    pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """Settings of an empty store of each kind."""
    return new_store(request.param, request, tmp_path)


def new_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    if kind == "sqlite":
        return StoreSettings(path=str(tmp_path / f"store-{uuid.uuid4().hex[:6]}.sqlite3"))
    pg: LocalPostgres = request.getfixturevalue("postgres")
    return StoreSettings(dsn=pg.new_database(f"t{uuid.uuid4().hex[:10]}"))  # type: ignore[arg-type]


@pytest.fixture
def engine(store: StoreSettings) -> Iterator[Engine]:
    e = open_engine(store)
    migrate(e)
    yield e
    e.dispose()


def store_env(store: StoreSettings) -> dict[str, str]:
    if store.dsn is not None:
        return {"TOCSIN_STORE_DSN": store.dsn.get_secret_value()}
    return {"TOCSIN_STORE_PATH": store.path}
