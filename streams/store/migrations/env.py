"""Alembic's environment: the connection comes from `streams.store.db.migrate`."""

from __future__ import annotations

from alembic import context

from streams.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through streams.store.db.migrate (it passes a connection)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
