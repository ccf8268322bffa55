"""The migrations build exactly the tables the code declares: a change to tables.py
without its migration fails here, not on somebody's production database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from streams.store.db import StoreSettings, migrate, open_engine
from streams.store.tables import metadata


def test_the_migrated_schema_equals_the_declared_tables(tmp_path: Path) -> None:
    engine = open_engine(StoreSettings(path=str(tmp_path / "s.sqlite3")))
    migrate(engine)
    migrate(engine)  # a second start changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_the_dsn_never_reaches_a_log_line() -> None:
    s = StoreSettings(dsn="postgresql://tocsin:hunter2@db:5432/tocsin")  # type: ignore[arg-type]
    assert "hunter2" not in s.describe() and "hunter2" not in repr(s)
    assert s.url().startswith("postgresql+psycopg://")
