"""The one database module: engine creation, the start-up wait, transactions.

Queries live in each domain's repository module as plain SQL (`sqlalchemy.text`);
the schema lives only in Alembic migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

import psycopg
import psycopg.errors
from sqlalchemy import URL, Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from tenacity import (
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)
from tenacity import Retrying as _Retrying

from core.failures import ConfigurationFailure, StartupFailure
from core.logs import get_logger
from core.settings import Settings

log = get_logger("db")


# PostgreSQL's JIT compiles a plan once its estimated cost passes `jit_above_cost`,
# and a hypertable's plan holds a scan per chunk: the engine's prefetch over a year
# of daily chunks spent 21 s compiling 5,489 functions to run for 33 ms. Nothing the
# service asks is a long CPU-bound scan that JIT would repay, so its sessions turn it
# off wherever the store runs (the local instance and compose do so server-wide).
_SESSION_OPTIONS = "-c jit=off"


def make_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    return create_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": "park-emissions", "options": _SESSION_OPTIONS},
    )


class StoreProblem(StrEnum):
    """Why a connection failed; only `unreachable` is worth waiting for."""

    unreachable = "unreachable"  # refused, timed out, starting up, shutting down
    rejected = "rejected"  # wrong password or user, pg_hba
    missing = "missing"  # the database does not exist
    unknown_host = "unknown_host"
    no_schema = "no_schema"  # reachable, but never migrated
    other = "other"


_TRANSIENT_SQLSTATES = {"57P03", "57P01", "57P02", "08006", "08001", "08004", "53300"}
_TRANSIENT_TEXT = (
    "connection refused",
    "starting up",
    "shutting down",
    "timeout expired",
    "no route to host",
    "server closed the connection",
    "too many clients",
)


def classify_store_error(sqlstate: str | None, message: str) -> StoreProblem:
    """psycopg gives a SQLSTATE only when the server answered; for a refused socket
    or a bad host name only the libpq text tells, so both are read."""
    lowered = message.lower()
    if sqlstate in {"28P01", "28000"} or "authentication failed" in lowered:
        return StoreProblem.rejected
    if sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return StoreProblem.missing
    if "translate host name" in lowered or "resolve host" in lowered:
        return StoreProblem.unknown_host
    if sqlstate in _TRANSIENT_SQLSTATES or any(t in lowered for t in _TRANSIENT_TEXT):
        return StoreProblem.unreachable
    return StoreProblem.other


def store_problem(exc: BaseException) -> StoreProblem | None:
    """The problem behind a driver or SQLAlchemy connection error; None for anything else."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, psycopg.errors.UndefinedTable):
        return StoreProblem.no_schema
    if not isinstance(orig, psycopg.OperationalError):
        return None
    return classify_store_error(orig.sqlstate, str(orig))


def _reason(exc: BaseException) -> str:
    """libpq's reason without its preamble: 'connection to server at ..., port ...
    failed: FATAL:  password authentication failed for user "x"' -> the last part."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = next((line.strip() for line in str(orig).splitlines() if line.strip()), "")
    reason = first.rsplit("failed: ", 1)[-1].removeprefix("FATAL:").strip()
    return reason or type(orig).__name__


def store_failure(exc: BaseException, url: URL, waited_s: float = 0.0) -> StartupFailure:
    """One actionable line naming host, port, database and user (never the password)."""
    where = f"PostgreSQL at {url.host}:{url.port}, database {url.database!r}, user {url.username!r}"
    problem = store_problem(exc)
    if problem is StoreProblem.rejected:
        return ConfigurationFailure(
            f"{where}: login rejected ({_reason(exc)}); check EMISSIONS_DB_USER and "
            "EMISSIONS_DB_PASSWORD (or the state directory's secrets/db_password)"
        )
    if problem is StoreProblem.missing:
        return ConfigurationFailure(
            f"{where}: the database does not exist; check EMISSIONS_DB_NAME, or create it "
            "(scripts/setup.sh does on a developer machine)"
        )
    if problem is StoreProblem.no_schema:
        return ConfigurationFailure(
            f"{where}: the schema is missing ({_reason(exc)}); run `emissions db upgrade` first"
        )
    if problem is StoreProblem.unknown_host:
        return ConfigurationFailure(f"{where}: unknown host; check EMISSIONS_DB_HOST")
    if problem is StoreProblem.unreachable:
        return StartupFailure(
            f"{where}: unreachable after {waited_s:.0f} s ({_reason(exc)}); is it running? "
            "Check EMISSIONS_DB_HOST and EMISSIONS_DB_PORT"
        )
    return StartupFailure(f"{where}: {_reason(exc)}")


def _is_transient(exc: BaseException) -> bool:
    return store_problem(exc) is StoreProblem.unreachable


def wait_for_database(engine: Engine, timeout_s: float = 60.0) -> None:
    """Services start before the database is ready in compose and after reboots: wait
    for what can come right by itself (refused, starting up), saying so, and fail
    at once, in one line, on what cannot (wrong password, missing database)."""

    def waiting(state: RetryCallState) -> None:
        log.warning(
            "waiting for the database",
            host=engine.url.host,
            port=engine.url.port,
            database=engine.url.database,
            waited_s=round(state.seconds_since_start or 0.0, 1),
        )

    retrying = _Retrying(
        retry=retry_if_exception(_is_transient),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(timeout_s),
        before_sleep=waiting,
    )
    try:
        for attempt in retrying:
            with attempt, engine.connect() as conn:
                conn.execute(text("SELECT 1"))
    except RetryError as exc:
        last = exc.last_attempt.exception()
        assert last is not None
        raise store_failure(last, engine.url, timeout_s) from None
    except DBAPIError as exc:
        raise store_failure(exc, engine.url) from None


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


def ready_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    """An engine once the database answers: every command starts by waiting for it."""
    engine = make_engine(settings, pool_size=pool_size)
    wait_for_database(engine, settings.startup_wait_s)
    return engine
