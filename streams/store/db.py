"""The store's database: where it is (settings), its engine, its schema (Alembic).

SQLite by default, a file path (`TOCSIN_STORE_PATH`), nothing to set up; PostgreSQL when
`TOCSIN_STORE_DSN` names one (`postgresql://user@host/db`; the password from the DSN,
`TOCSIN_STORE_DSN_FILE` or libpq's own PGPASSWORD/.pgpass). Every process that opens the
store brings its schema up to date first (`migrate`), so a new version never needs a
manual step; Alembic's version table records where each database is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from streams.settings import SecretFileSettings

MIGRATIONS = str(Path(__file__).with_name("migrations"))


class StoreSettings(SecretFileSettings):
    model_config = SettingsConfigDict(env_prefix="TOCSIN_STORE_", frozen=True, extra="ignore")

    path: str = "tocsin-store.sqlite3"
    dsn: SecretStr | None = None
    # how long a query waits for a connection or the server before it counts as down
    timeout_s: float = 5.0

    @field_validator("dsn", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return value or None

    @model_validator(mode="after")
    def _dsn_is_postgres(self) -> StoreSettings:
        if self.dsn is not None:
            try:
                url = make_url(self.dsn.get_secret_value())
            except ArgumentError:
                raise ValueError("TOCSIN_STORE_DSN: not a database URL such as "
                                 "postgresql://tocsin@db:5432/tocsin") from None  # fmt: skip
            if url.get_backend_name() != "postgresql":
                raise ValueError(f"TOCSIN_STORE_DSN: {url.get_backend_name()!r} is not "
                                 "PostgreSQL (SQLite is TOCSIN_STORE_PATH)")  # fmt: skip
        return self

    def url(self) -> str:
        if self.dsn is None:
            return f"sqlite:///{self.path}"
        url = make_url(self.dsn.get_secret_value()).set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    def describe(self) -> str:
        """Where the store is, without its password (for logs)."""
        if self.dsn is None:
            return f"sqlite:{self.path}"
        return make_url(self.dsn.get_secret_value()).render_as_string(hide_password=True)


def settings_error(exc: ValidationError) -> str:
    """What was wrong with settings, without the values given: pydantic's own text
    repeats its input, a DSN's password with it."""
    return "; ".join(e["msg"].removeprefix("Value error, ")
                     for e in exc.errors(include_url=False, include_input=False))  # fmt: skip


def _json(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def open_engine(settings: StoreSettings) -> Engine:
    url = settings.url()
    # orjson for the JSON columns (labels, details): a few times cheaper than json.dumps
    codec: dict[str, Any] = {"json_serializer": _json, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": settings.timeout_s}, **codec)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=4, max_overflow=4, **codec,
        pool_timeout=settings.timeout_s,
        connect_args={"connect_timeout": max(1, int(settings.timeout_s)),
                      "application_name": "tocsin"},
    )  # fmt: skip


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    # readers (the API) never block the projector's writes and the other way round;
    # NORMAL is durable across a process crash (a kill -9), the case the offsets cover
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
