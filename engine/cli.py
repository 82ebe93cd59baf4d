"""`emissions engine run|rebuild|replace-meter`: the emissions engine's commands."""

from __future__ import annotations

import math
import signal
import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from core import dirty_marks
from core.cli_support import err, load_settings, out, parse_time_option
from core.db import make_engine, transaction, wait_for_database
from core.emissions.counters import Replacement
from core.health import serve_health
from engine import marks

app = typer.Typer(help="Hourly consumption and CO2e from raw readings.", no_args_is_help=True)


@app.command("run")
def run(
    health_port: Annotated[int, typer.Option(help="Port of /healthz and /metrics.")] = 9102,
) -> None:
    """Recompute dirty meter-hours continuously and publish the live CO2e rate."""
    # Imported here, not at module level: `emissions` imports every component's
    # commands, and each process should export only its own metrics.
    from engine import service  # noqa: PLC0415

    settings = load_settings("db_password", "mqtt_password", mqtt_user="svc-engine")
    engine = make_engine(settings)
    wait_for_database(engine)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = threading.Thread(target=service.run, args=(engine, settings, stop), daemon=True)
    server = serve_health(settings.metrics_host, health_port, worker.is_alive)
    worker.start()
    worker.join()
    server.shutdown()


@app.command("rebuild")
def rebuild(
    site: Annotated[str, typer.Option(help="Site id.")],
    start: Annotated[
        str, typer.Option("--from", help="RFC 3339 start, e.g. 2025-01-01T00:00+07:00")
    ],
    end: Annotated[str, typer.Option("--to", help="RFC 3339 end (exclusive).")],
) -> None:
    """Recompute every hour of SITE with readings in [--from, --to) from raw readings."""
    from engine import service  # noqa: PLC0415 (see run)

    t0, t1 = parse_time_option(start, "--from"), parse_time_option(end, "--to")
    if t1 <= t0:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine)
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM sites WHERE id = :s"), {"s": site}).first() is None:
            err.print(f"unknown site {site!r}")
            raise typer.Exit(1)
        marked = dirty_marks.mark_range(conn, site, t0, t1)
    columns = (TextColumn("recomputing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    written = 0
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("rebuild", total=marked)
        while True:
            with engine.connect() as conn:
                left = marks.dirty_count(conn)
            progress.update(task, completed=max(0, marked - left))
            if left == 0:
                break
            # The bar moves with every committed batch, not once per pass.
            written += service.refresh_pass(
                engine, progress=lambda hours: progress.advance(task, hours)
            )[1]
    out.print(f"{site}: {marked} dirty meter-hours recomputed, {written} hour rows written")


def _register_value(value: float, name: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(
            f"{value!r} is not a register value (finite, >= 0)", param_hint=name
        )
    return value


@app.command("replace-meter")
def replace_meter(
    meter: Annotated[str, typer.Argument(help="Meter id whose register was swapped.")],
    at: Annotated[str, typer.Option(help="RFC 3339 time of the swap, with offset.")],
    old_final: Annotated[float, typer.Option(help="Old register's final value.")],
    new_start: Annotated[float, typer.Option(help="New register's start value.")],
    note: Annotated[str, typer.Option(help="Who swapped it and why (kept for audit).")] = "",
) -> None:
    """Record a meter replacement; the hours across it are restated by the engine.

    Replacements are never guessed from the data (SPEC section 5): without this
    record a swap reads as a reset, and the old register's last stretch is lost.
    """
    swap = Replacement(
        parse_time_option(at, "--at"),
        _register_value(old_final, "--old-final"),
        _register_value(new_start, "--new-start"),
    )
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine)
    with transaction(engine) as conn:
        if conn.execute(text("SELECT 1 FROM meters WHERE id = :m"), {"m": meter}).first() is None:
            err.print(f"unknown meter {meter!r}")
            raise typer.Exit(1)
        recorded = marks.record_replacement(conn, meter, swap, note)
    if not recorded:
        err.print(f"{meter}: a replacement at {swap.at.isoformat()} is already recorded")
        raise typer.Exit(1)
    out.print(
        f"{meter}: replacement at {swap.at.isoformat()} recorded; the engine restates its hours"
    )
