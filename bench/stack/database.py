"""A throw-away database on the project's PostgreSQL + TimescaleDB instance."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from core import migrate
from core.park.models import Park
from core.park.repository import apply_park
from core.settings import Settings

Conn = psycopg.Connection[tuple[Any, ...]]


def throwaway_database(stack: contextlib.ExitStack) -> Settings:
    """An empty database `emissions_bench_<hex>`, dropped WITH (FORCE) when `stack` closes."""
    admin = create_engine(Settings().database_url, isolation_level="AUTOCOMMIT")
    stack.callback(admin.dispose)
    name = f"emissions_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    stack.callback(drop)
    return Settings(db_name=name)


def create_database(park: Park, stack: contextlib.ExitStack) -> Settings:
    """A throw-away database, migrated, with `park` applied."""
    settings = throwaway_database(stack)
    engine = create_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            apply_park(conn, park)
    finally:
        engine.dispose()
    return settings


def db_connect(settings: Settings, autocommit: bool = True) -> Conn:
    return psycopg.connect(settings.libpq_url, autocommit=autocommit)


def scalar(conn: Conn, sql: str, params: Sequence[object] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]
