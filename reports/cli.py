"""`emissions report inventory|obligation|intensity|submit|verify`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel
from sqlalchemy import Engine

from core.cli_support import err, load_settings, out
from core.db import make_engine, wait_for_database
from reports import build

app = typer.Typer(
    help="Reports for regulators and markets: inventory, obligation, intensity, submissions.",
    no_args_is_help=True,
)

Site = Annotated[str, typer.Option(help="Site id, e.g. NCK.")]
Enterprise = Annotated[
    str | None, typer.Option(help="Enterprise id; the whole park when left out.")
]
Year = Annotated[int, typer.Option(help="Calendar year (the site's time zone).")]
Years = Annotated[int, typer.Option(min=1, max=2, help="1: the year; 2: the two-year cycle.")]


def _engine() -> Engine:
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine)
    return engine


def _print(models: Sequence[BaseModel] | Mapping[str, BaseModel]) -> None:
    if isinstance(models, Mapping):
        data: object = {k: m.model_dump(mode="json") for k, m in models.items()}
    else:
        data = [m.model_dump(mode="json") for m in models]
    out.print_json(json.dumps(data))


@contextmanager
def _known() -> Iterator[None]:
    """An unknown site or enterprise: one line and exit 1, never a traceback."""
    try:
        yield
    except build.ReportError as exc:
        err.print(f"[red]{exc} not found[/red]")
        raise typer.Exit(1) from None


@app.command("inventory")
def inventory(
    site: Site,
    year: Year,
    years: Years = 1,
    enterprise: Enterprise = None,
    format: Annotated[Literal["json", "xlsx", "html"], typer.Option()] = "json",
    output: Annotated[Path | None, typer.Option("--out", help="File to write.")] = None,
) -> None:
    """The GHG inventory of a year or two-year cycle, as JSON, XLSX or HTML."""
    from reports.html import inventory_html  # noqa: PLC0415 - only this command needs them
    from reports.xlsx import inventory_xlsx  # noqa: PLC0415

    with _known(), _engine().connect() as conn:
        report = build.inventory(conn, site, year, years=years, enterprise=enterprise)
    if format == "xlsx" and output is None:
        err.print("[red]--out is required for xlsx[/red]")
        raise typer.Exit(2)
    content: str | bytes = (
        inventory_xlsx(report)
        if format == "xlsx"
        else inventory_html(report)
        if format == "html"
        else report.model_dump_json(indent=2)
    )
    if output is None:
        out.print(content, markup=False, highlight=False, soft_wrap=True)
    elif isinstance(content, bytes):
        output.write_bytes(content)
    else:
        output.write_text(content, encoding="utf-8")
    if output is not None:
        err.print(
            f"{output}: {report.totals.tco2e:,.3f} tCO2e, {report.totals.toe:,.3f} TOE, "
            f"completeness {(report.totals.completeness or 0) * 100:.1f} %"
        )


@app.command("obligation")
def obligation(site: Site, enterprise: Enterprise = None) -> None:
    """Year to date and projected TOE and tCO2e against 1,000 TOE and 3,000 tCO2e."""
    with _known(), _engine().connect() as conn:
        _print(build.obligation(conn, site, enterprise))


@app.command("intensity")
def intensity(site: Site, year: Year, enterprise: Enterprise = None) -> None:
    """Monthly and yearly intensity against the allocation; projected surplus or deficit."""
    with _known(), _engine().connect() as conn:
        _print(build.intensities(conn, site, year, enterprise))


@app.command("submit")
def submit(
    site: Site,
    year: Year,
    years: Years = 1,
    enterprise: Enterprise = None,
    by: Annotated[str, typer.Option(help="Who submits (recorded).")] = "cli",
) -> None:
    """Freeze the inventory as it is now, hash-chained to the previous submission."""
    with _known(), _engine().begin() as conn:
        created = build.submit(conn, site, year, years=years, enterprise=enterprise, by=by)
    out.print_json(json.dumps(created))


@app.command("verify")
def verify(site: Site, enterprise: Enterprise = None) -> None:
    """Recompute every submission chain's hashes; exit 1 when one does not verify."""
    with _known(), _engine().connect() as conn:
        chains = build.verify(conn, site, enterprise)
    _print(chains)
    if not all(c.valid for c in chains.values()):
        raise typer.Exit(1)
