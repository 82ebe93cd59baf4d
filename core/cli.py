"""The `emissions` command: one entry point, a sub-command per component.

Each component owns its sub-commands; this module only wires them together and
turns configuration errors into one clear line instead of a traceback.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import typer.rich_utils
import yaml
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from alerts import cli as alerts_cli
from api import cli as api_cli
from api.console import cli as console_cli
from core import migrate
from core.broker.render import BrokerLimits, render_broker
from core.cli_support import err, load_settings, out
from core.db import (
    make_engine,
    store_failure,
    store_problem,
    timescaledb_info,
    transaction,
    wait_for_database,
)
from core.failures import StartupFailure
from core.park.loader import ParkConfigError, load_park
from core.park.models import Park
from core.park.repository import apply_park, read_park
from core.settings import Settings
from engine import cli as engine_cli
from ingest import cli as ingest_cli
from ingest import quarantine_cli
from reports import cli as reports_cli
from simulator import cli as simulator_cli

app = typer.Typer(
    name="emissions",
    help="Park emissions monitor: MQTT meter readings to hourly CO2e, roadmap status and alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
config_app = typer.Typer(
    help="The park configuration file (docs: config/park.yaml is an example).", no_args_is_help=True
)
broker_app = typer.Typer(help="The project's Mosquitto instance.", no_args_is_help=True)


def _package_version() -> str:
    try:
        return version("park-emissions")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        out.print(f"emissions {_package_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Park emissions monitor: MQTT meter readings to hourly CO2e, roadmap status and alerts."""


app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(broker_app, name="broker")

app.command("ingest")(ingest_cli.ingest)
app.command("simulate")(simulator_cli.simulate)
app.add_typer(engine_cli.app, name="engine")
app.command("api")(api_cli.serve)
app.add_typer(api_cli.keys_app, name="apikey")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(reports_cli.app, name="report")
app.add_typer(quarantine_cli.app, name="quarantine")
app.add_typer(console_cli.app, name="user")

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
    engine = make_engine(settings)
    wait_for_database(engine, settings.startup_wait_s)
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
    engine = make_engine(settings)
    wait_for_database(engine, settings.startup_wait_s)
    with engine.connect() as conn:
        data = read_park(conn)
    out.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="", markup=False)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the schema up (to the latest revision by default)."""
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine, settings.startup_wait_s)
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
    engine = make_engine(settings)
    wait_for_database(engine, settings.startup_wait_s)
    migrate.downgrade(engine, revision)


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine, settings.startup_wait_s)
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


def main() -> None:
    """The console entry: a user's mistake or a missing service ends in one line with
    the exit code the README documents, never a traceback."""
    if not sys.stdout.isatty():
        # Help piped to a pager or a file keeps its lines; rich would wrap at 80.
        typer.rich_utils.MAX_WIDTH = 200
    try:
        app()
    except StartupFailure as exc:
        _fail(exc)
    except DBAPIError as exc:
        if store_problem(exc) is None:
            raise
        # A command that lost the store after its start-up check (or never made one).
        _fail(store_failure(exc, make_url(Settings().database_url)))


def _fail(failure: StartupFailure) -> NoReturn:
    err.print(Text.assemble(("error: ", "red"), str(failure)), soft_wrap=True, highlight=False)
    sys.exit(failure.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
