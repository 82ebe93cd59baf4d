"""`emissions quarantine replay|prune`: the quarantine's admin commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import psycopg
import typer
from rich.table import Table

from core.cli_support import err, load_settings, out
from core.db import make_engine, transaction, wait_for_database
from ingest import quarantine
from ingest.replay import MAX_IDS, Outcome, replay_quarantined

app = typer.Typer(help="Quarantined messages: replay, retention.", no_args_is_help=True)


@app.command("replay")
def replay(
    ids: Annotated[list[int], typer.Argument(help="Quarantine row ids (GET /v1/quarantine).")],
) -> None:
    """Re-ingest the messages of these rows through the normal path, e.g. after
    registering the missing meter. Each reading ends stored or quarantined again;
    the rows stay, marked replayed."""
    if len(ids) > MAX_IDS:
        err.print(f"[red]at most {MAX_IDS} ids at a time[/red]")
        raise typer.Exit(2)
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine)
    with transaction(engine) as conn:
        results = replay_quarantined(conn, ids, settings)
    table = Table("id", "outcome", "stored", "duplicates", "conflicts", "quarantined again")
    for r in results:
        again = ", ".join(f"{k} {n}" for k, n in sorted(r.quarantined.items()))
        table.add_row(
            str(r.id), r.outcome.value, str(r.stored), str(r.duplicates), str(r.conflicts), again
        )
    out.print(table)
    if any(r.outcome is not Outcome.replayed for r in results):
        raise typer.Exit(1)


@app.command("prune")
def prune(
    days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Keep this many days (default: EMISSIONS_INGEST_QUARANTINE_RETENTION_DAYS)."
        ),
    ] = None,
) -> None:
    """Delete quarantine rows and drop counts older than the retention period (the
    ingestor also does this hourly)."""
    settings = load_settings("db_password")
    keep = days or settings.ingest_quarantine_retention_days
    with psycopg.connect(settings.libpq_url, connect_timeout=5) as conn:
        rows, drops = quarantine.prune(conn, datetime.now(UTC), keep)
    out.print(f"deleted {rows} quarantine row(s) and {drops} drop count(s) older than {keep} days")
