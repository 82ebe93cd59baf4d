"""What `emissions apikey` and `emissions user` share: both manage principals (API
keys, console users) the same way, so a refusal, a listing and a revocation read
the same in the two commands."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import typer
from rich.table import Table
from sqlalchemy import Connection

from core.cli_support import err, load_settings, out
from core.db import make_engine, transaction


@contextmanager
def principals_transaction(*refusals: type[Exception]) -> Iterator[Connection]:
    """A transaction on the configured database; one of `refusals` (the store's "not
    like that" errors) rolls it back and exits 1 with its reason, never a traceback."""
    engine = make_engine(load_settings("db_password"))
    try:
        with transaction(engine) as conn:
            yield conn
    except refusals as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def print_principals(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A table with times to the minute; a missing value (no enterprise, never
    used, not revoked) is an empty cell."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    out.print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def report_retired(done: bool, noun: str, name: str, verb: str) -> None:
    """Exit 1 when no active principal had that name (nothing was changed)."""
    if not done:
        err.print(f"no active {noun} named {name!r}")
        raise typer.Exit(1)
    out.print(f"{verb} {name!r}")
