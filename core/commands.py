"""Core's own commands: the database schema, the park configuration file and the
project's Mosquitto instance (`emissions db|config|broker`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from core import migrate
from core.broker.render import BrokerLimits, render_broker
from core.cli_support import err, load_settings, out
from core.db import ready_engine, timescaledb_info, transaction
from core.park.loader import ParkConfigError, load_park
from core.park.models import Park
from core.park.repository import apply_park, read_park

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
config_app = typer.Typer(
    help="The park configuration file (docs: config/park.yaml is an example).", no_args_is_help=True
)
broker_app = typer.Typer(help="The project's Mosquitto instance.", no_args_is_help=True)

ParkFile = Annotated[Path, typer.Argument(help="Park configuration YAML file.")]


def _load_park_or_exit(path: Path) -> Park:
    try:
        return load_park(path)
    except ParkConfigError as exc:
        err.print(f"[red]{path}: {len(exc.issues)} problem(s)[/red]")
        for issue in exc.issues:
            err.print(f"  {issue}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@config_app.command("validate")
def config_validate(path: ParkFile) -> None:
    """Check a park file; print every problem with its exact path."""
    park = _load_park_or_exit(path)
    out.print(
        f"{path}: valid ({len(park.sites)} site(s), "
        f"{sum(len(s.enterprises) for s in park.sites)} enterprise(s), "
        f"{len(park.meters())} meter(s), {len(park.factors)} factor(s))"
    )


@config_app.command("apply")
def config_apply(path: ParkFile) -> None:
    """Store a park file; idempotent. Meters missing from it are deactivated, never deleted."""
    settings = load_settings("db_password")
    park = _load_park_or_exit(path)
    engine = ready_engine(settings)
    with transaction(engine) as conn:
        summary = apply_park(conn, park)
    if not summary.changed:
        out.print(f"{path}: applied, nothing changed")
        return
    for label, counts in (
        ("inserted", summary.inserted),
        ("updated", summary.updated),
        ("deactivated", summary.deactivated),
    ):
        if counts:
            out.print(f"{label}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


@config_app.command("show")
def config_show() -> None:
    """Print the stored (active) configuration as YAML."""
    settings = load_settings("db_password")
    engine = ready_engine(settings)
    with engine.connect() as conn:
        data = read_park(conn)
    out.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="", markup=False)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the schema up (to the latest revision by default)."""
    settings = load_settings("db_password")
    engine = ready_engine(settings)
    migrate.upgrade(engine, revision)
    with engine.connect() as conn:
        info = timescaledb_info(conn)
    out.print(
        f"schema at {migrate.current_revision(engine)}; "
        f"TimescaleDB {info['version']} ({info['license']} licence)"
    )


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. base")]) -> None:
    """Migrate the schema down to REVISION."""
    settings = load_settings("db_password")
    engine = ready_engine(settings)
    migrate.downgrade(engine, revision)


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    settings = load_settings("db_password")
    engine = ready_engine(settings)
    out.print(migrate.current_revision(engine) or "empty")


@broker_app.command("render")
def broker_render(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the broker's files.")],
    park_file: Annotated[
        Path | None, typer.Option("--park", help="Park file (default: EMISSIONS_PARK_CONFIG).")
    ] = None,
    bind: Annotated[str, typer.Option(help="Listener address.")] = "127.0.0.1",
    log_to_stdout: Annotated[bool, typer.Option(help="Log to stdout (containers).")] = False,
) -> None:
    """Write mosquitto.conf, acl and passwd for the park's gateways and the services."""
    settings = load_settings()
    park = _load_park_or_exit(park_file or settings.park_config)
    changed = render_broker(
        park,
        out_dir.resolve(),
        state_dir=settings.state_dir,
        prefix=settings.mqtt_topic_prefix,
        bind=bind,
        port=settings.mqtt_port,
        log_to_stdout=log_to_stdout,
        limits=BrokerLimits.for_payload(settings.ingest_max_payload_bytes),
    )
    out.print("changed: " + " ".join(p.name for p in changed) if changed else "unchanged")
