"""Many rows into one table with one statement, inside the caller's transaction.

On PostgreSQL the rows go as one array per column into a single
`INSERT ... SELECT * FROM unnest(...)`: one round trip and one statement for the
server to plan, however many rows, where an executemany sends a statement per row
(the per-row work on the server, not the wire, was what bounded the projector).
On SQLite, in the same process, the driver's own executemany is the cheap way.

Values are converted here exactly as the tables' types would (`UtcDateTime` to naive
UTC, JSON to text), so what a reader gets back is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import orjson
from sqlalchemy import JSON, ColumnElement, Connection, Dialect, Table, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from streams.store.tables import UtcDateTime

Conflict = Literal["nothing", "update"]


def insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
           on_conflict: Conflict = "nothing") -> None:  # fmt: skip
    """Insert `rows` (dicts by column name, a column left out is NULL); a row whose primary
    key is there already is left alone (`nothing`) or replaced (`update`)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        sql, converters = _unnest_sql(table, on_conflict)
        names = [c.name for c in table.c]
        columns = tuple([conv(r.get(n)) for r in rows] if conv else [r.get(n) for r in rows]
                        for n, conv in zip(names, converters, strict=True))  # fmt: skip
        conn.exec_driver_sql(sql, columns)
        return
    sql, processors = _sqlite_sql(table, on_conflict, conn.dialect)
    names = [c.name for c in table.c]
    conn.exec_driver_sql(sql, [tuple(proc(r.get(n)) if proc else r.get(n)
                                     for n, proc in zip(names, processors, strict=True))
                               for r in rows])  # fmt: skip


def among(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]
          ) -> ColumnElement[bool]:  # fmt: skip
    """`column IN values`; on PostgreSQL one array parameter (`= ANY`) rather than a
    parameter per value, which costs the same to send for any number of values."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("UtcDateTime: a naive datetime is ambiguous")
    return value.astimezone(UTC).replace(tzinfo=None)


def _json_text(value: Any) -> str:
    # None as JSON null, as the JSON type stores it (none_as_null is off)
    return orjson.dumps(value).decode()


Converter = Callable[[Any], Any] | None


@cache
def _unnest_sql(table: Table, on_conflict: Conflict) -> tuple[str, list[Converter]]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    quote = dialect.identifier_preparer.quote
    names, arrays, converters = [], [], []
    for c in table.c:
        names.append(quote(c.name))
        arrays.append(f"%b::{c.type.compile(dialect=dialect)}[]")
        conv: Converter = None
        if isinstance(c.type, UtcDateTime):
            conv = _naive_utc
        elif isinstance(c.type, JSON):
            conv = _json_text
        converters.append(conv)
    tail = _on_conflict(names, [quote(c.name) for c in table.primary_key], on_conflict)
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(names)}) "
           f"SELECT * FROM unnest({', '.join(arrays)}) {tail}")  # fmt: skip
    return sql, converters


@cache
def _sqlite_sql(table: Table, on_conflict: Conflict, dialect: Dialect
                ) -> tuple[str, list[Converter]]:  # fmt: skip
    # (the engine's dialect: it carries the engine's JSON serializer)
    quote = dialect.identifier_preparer.quote
    names = [quote(c.name) for c in table.c]
    # the types' own bind processors: the text SQLAlchemy would store, to the character
    processors: list[Converter] = [c.type.bind_processor(dialect) for c in table.c]
    tail = _on_conflict(names, [quote(c.name) for c in table.primary_key], on_conflict)
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' for _ in names)}) {tail}")  # fmt: skip
    return sql, processors


def _on_conflict(names: list[str], keys: list[str], on_conflict: Conflict) -> str:
    """The same upsert clause in both dialects (`excluded` is the proposed row in each)."""
    if on_conflict == "update":
        sets = ", ".join(f"{n} = excluded.{n}" for n in names if n not in keys)
        return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    return "ON CONFLICT DO NOTHING"
