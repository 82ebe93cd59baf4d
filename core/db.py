"""The one database module: engine creation, the start-up wait, transactions.

Queries live in each domain's repository module as plain SQL (`sqlalchemy.text`);
the schema lives only in Alembic migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from core.logs import get_logger
from core.settings import Settings

log = get_logger("db")


def make_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    return create_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": "park-emissions"},
    )


@retry(
    retry=retry_if_exception_type(OperationalError),
    wait=wait_exponential(multiplier=0.2, max=5),
    stop=stop_after_delay(60),
    reraise=True,
)
def wait_for_database(engine: Engine) -> None:
    """Services start before the database is ready in compose and after reboots;
    wait instead of crashing, but give up after a minute with the real error."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work: commits on success, rolls back on any exception."""
    with engine.begin() as conn:
        yield conn


def timescaledb_info(conn: Connection) -> dict[str, str]:
    """Version and licence of the TimescaleDB extension, for start-up logs and /readyz."""
    version = conn.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    ).scalar_one_or_none()
    licence = conn.execute(text("SELECT current_setting('timescaledb.license', true)")).scalar()
    return {"version": str(version), "license": str(licence)}
