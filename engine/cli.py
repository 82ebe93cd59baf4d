"""`emissions engine run|rebuild|replace-meter`: the emissions engine's commands."""

from __future__ import annotations

import math
from functools import partial
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, text

from core import dirty_marks
from core.broker.login import check_login
from core.cli_support import err, load_settings, out, parse_time_option
from core.db import ready_engine, transaction
from core.emissions.counters import Replacement
from core.runner import HealthPort, Worker, run_service
from core.settings import Settings
from engine import marks

app = typer.Typer(help="Hourly consumption and CO2e from raw readings.", no_args_is_help=True)


WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, max=16, help="Worker threads (default: EMISSIONS_ENGINE_WORKERS, 2)."),
]


def _engine_settings(workers: int | None, *secrets: str, mqtt_user: str | None = None) -> Settings:
    settings = load_settings(*secrets, mqtt_user=mqtt_user)
    if workers is not None:
        settings = settings.model_copy(update={"engine_workers": workers})
    return settings


def _ready_engine(settings: Settings) -> Engine:
    """A pool with a connection for every worker and one to spare."""
    return ready_engine(settings, pool_size=max(settings.db_pool_size, settings.engine_workers + 1))


@app.command("run")
def run(
    health_port: Annotated[
        int | None,
        typer.Option(help="Port of /healthz and /metrics (default: EMISSIONS_ENGINE_HEALTH_PORT)."),
    ] = None,
    workers: WorkersOption = None,
) -> None:
    """Recompute dirty meter-hours continuously and publish the live CO2e rate."""
    # Imported here, not at module level: `emissions` imports every component's
    # commands, and each process should export only its own metrics.
    from engine import service  # noqa: PLC0415

    settings = _engine_settings(workers, "db_password", "mqtt_password", mqtt_user="svc-engine")
    engine = _ready_engine(settings)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    check_login(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_username,
        password,
        timeout_s=settings.startup_wait_s,
    )
    health = HealthPort.chosen(settings, "engine", health_port)
    run_service("engine", Worker(partial(service.run, engine, settings)), health)


@app.command("rebuild")
def rebuild(
    site: Annotated[str, typer.Option(help="Site id.")],
    start: Annotated[
        str, typer.Option("--from", help="RFC 3339 start, e.g. 2025-01-01T00:00+07:00")
    ],
    end: Annotated[str, typer.Option("--to", help="RFC 3339 end (exclusive).")],
    workers: WorkersOption = None,
) -> None:
    """Recompute every hour of SITE with readings in [--from, --to) from raw readings."""
    from engine import service  # noqa: PLC0415 (see run)

    t0, t1 = parse_time_option(start, "--from"), parse_time_option(end, "--to")
    if t1 <= t0:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    settings = _engine_settings(workers, "db_password")
    engine = _ready_engine(settings)
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM sites WHERE id = :s"), {"s": site}).first() is None:
            err.print(f"unknown site {site!r}")
            raise typer.Exit(1)
        marked = dirty_marks.mark_range(conn, site, t0, t1)
    columns = (TextColumn("recomputing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("rebuild", total=marked)
        # The bar moves with every committed batch, not once per pass.
        written = service.refresh_until_clean(
            engine,
            max_passes=1_000_000,
            workers=settings.engine_workers,
            progress=lambda hours: progress.advance(task, hours),
            pending=partial(marks.dirty_count_of_site, site_id=site, t0=t0, t1=t1),
        )
        progress.update(task, completed=marked)
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

    Replacements are never guessed from the data: without this
    record a swap reads as a reset, and the old register's last stretch is lost.
    """
    swap = Replacement(
        parse_time_option(at, "--at"),
        _register_value(old_final, "--old-final"),
        _register_value(new_start, "--new-start"),
    )
    settings = load_settings("db_password")
    engine = ready_engine(settings)
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


@app.command("accept-interval")
def accept_interval(
    meter: Annotated[str, typer.Argument(help="Meter id of the implausible interval.")],
    at: Annotated[
        str, typer.Option(help="RFC 3339 end of the interval: its `implausible` event's time.")
    ],
    by: Annotated[str, typer.Option(help="Who accepts it (kept for audit).")],
    note: Annotated[str, typer.Option(help="Why it is real consumption.")] = "",
) -> None:
    """Count an interval the plausibility guard kept out of the totals (the meter's
    max_rate_per_h was exceeded, yet the consumption was real); the engine restates
    its hours. For a swapped register record a replacement instead (replace-meter)."""
    end = parse_time_option(at, "--at")
    settings = load_settings("db_password")
    engine = ready_engine(settings)
    with transaction(engine) as conn:
        found = conn.execute(
            text(
                "SELECT 1 FROM data_quality_events "
                "WHERE meter_id = :m AND ts = :t AND kind = 'implausible'"
            ),
            {"m": meter, "t": end},
        ).first()
        if found is None:
            err.print(f"{meter}: no implausible interval ends at {end.isoformat()}")
            raise typer.Exit(1)
        conn.execute(
            text(
                "INSERT INTO accepted_intervals (meter_id, t1, accepted_by, note) "
                "VALUES (:m, :t, :by, :note) ON CONFLICT DO NOTHING"
            ),
            {"m": meter, "t": end, "by": by, "note": note},
        )
        dirty_marks.mark_instant(conn, meter, end)
    out.print(f"{meter}: interval ending {end.isoformat()} accepted; the engine restates it")
