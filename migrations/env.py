"""Alembic environment: runs on the connection handed in by `core.migrate`, or on
the URL from the settings when invoked through the `alembic` command."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from core.settings import get_settings


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(get_settings().database_url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


run_migrations_online()
