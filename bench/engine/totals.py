"""Totals step of bench.engine: enterprise and site totals of a year.

The sample park gets a full year (2025) of meter-hours, loaded as bench/api.py
loads them (one INSERT ... SELECT), and each variant's
`engine.rollups.refresh_totals` rebuilds every enterprise's and site's totals
for a window, in `bench/engine/worker.py totals` (its own process and source
tree). The year is measured for every variant; a variant still running after
`cap_s` is stopped and reported as "more than cap_s". A 30-day window, measured
for every variant, gives the ratio at equal size when the baseline's year is
too slow to wait for.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from bench.api import LOAD, YEAR_END, YEAR_START
from bench.engine.variants import Variant, run_worker
from core.settings import Settings

MONTH_END = YEAR_START + timedelta(days=30)


def load_year(settings: Settings) -> int:
    """A year of meter-hours for every meter of the database; returns the count."""
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE hourly_emissions, enterprise_hourly, site_hourly"))
            conn.execute(text(LOAD), {"a": YEAR_START, "b": YEAR_END})
            conn.execute(text("ANALYZE hourly_emissions"))
            return int(conn.execute(text("SELECT count(*) FROM hourly_emissions")).scalar_one())
    finally:
        engine.dispose()


def time_totals(
    variant: Variant, settings: Settings, start: datetime, end: datetime, cap_s: float
) -> dict[str, Any]:
    window = ("--from", start.isoformat(), "--to", end.isoformat())
    try:
        return run_worker(variant.tree, settings, "totals", *window, timeout=cap_s)
    except subprocess.TimeoutExpired:
        # The worker is gone but its statement may still run (and hold row locks
        # the next variant would wait on): end it before measuring anything else.
        _end_worker_backends(settings)
        return {"seconds": None, "more_than_s": cap_s}


def _end_worker_backends(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 30000) FROM pg_stat_activity "
                    "WHERE application_name = 'bench-engine' AND datname = current_database()"
                )
            )
    finally:
        engine.dispose()


def run_totals(settings: Settings, variants: list[Variant], cap_s: float) -> dict[str, Any]:
    meter_hours = load_year(settings)
    out: dict[str, Any] = {"meter_hours": meter_hours, "year": {}, "days_30": {}}
    for v in variants:
        out["days_30"][v.name] = time_totals(v, settings, YEAR_START, MONTH_END, cap_s)
        out["year"][v.name] = time_totals(v, settings, YEAR_START, YEAR_END, cap_s)
    out["window"] = [YEAR_START.isoformat(), YEAR_END.isoformat()]
    out["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return out


def totals_rows(table: Any, f: dict[str, Any], goal_s: float) -> None:
    for window in ("year", "days_30"):
        runs = f[window]
        first = next(iter(runs.values()))
        for name, r in runs.items():
            took = r["seconds"]
            figure = f"{took:.1f} s" if took is not None else f"> {r['more_than_s']:.0f} s"
            detail = f"{f['meter_hours']:,} meter-hours loaded (a year of the sample park)"
            if r is not first and took is not None and first["seconds"] is not None:
                detail += f"; x{first['seconds'] / took:.1f} faster than {next(iter(runs))}"
            if window == "year":
                ok = took is not None and took <= goal_s
                detail += f"; goal <= {goal_s:g} s: " + (
                    "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
                )
            label = "a year" if window == "year" else "30 days"
            table.add_row("4", f"Totals of {label}, {name}", figure, detail)
