"""The `emissions` command: one entry point, a sub-command per component.

Each component owns its sub-commands (core's own, the database, the park file and
the broker, are `core.commands`); this module only wires them together and turns
configuration errors into one clear line instead of a traceback. It is the one
module that imports every component, which is why it sits above them all and not
in core/.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, NoReturn

import typer
import typer.rich_utils
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from alerts import cli as alerts_cli
from api import cli as api_cli
from api.console import cli as console_cli
from core import commands
from core.cli_support import err, out
from core.db import store_failure, store_problem
from core.failures import StartupFailure
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


app.add_typer(commands.db_app, name="db")
app.add_typer(commands.config_app, name="config")
app.add_typer(commands.broker_app, name="broker")

app.command("ingest")(ingest_cli.ingest)
app.command("simulate")(simulator_cli.simulate)
app.add_typer(engine_cli.app, name="engine")
app.command("api")(api_cli.serve)
app.add_typer(api_cli.keys_app, name="apikey")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(reports_cli.app, name="report")
app.add_typer(quarantine_cli.app, name="quarantine")
app.add_typer(console_cli.app, name="user")


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
