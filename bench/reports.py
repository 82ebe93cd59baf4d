"""Reports benchmark: generation time of a park-year inventory (SPEC section 8).

A throw-away database gets the sample park (config/park.yaml) and a full year
(2025) of meter-hours for every meter, with `bench.api`'s statement; the
enterprise and site totals are summed from them in two set-based statements (the
sums the engine's rollups keep, as migration 0004 backfills them: the engine's
per-enterprise refresh of a whole year is the engine benchmark's business, not
this one's). This process then times, in process, on one connection:

- park_json: the park's 2025 inventory (every enterprise, meter, source, factor,
  QA/QC section) computed and serialised to JSON;
- park_xlsx, park_html: the same rendered as a workbook and as the HTML page;
- enterprise_json: one enterprise's inventory;
- obligation, intensity: every enterprise's position and 2025 intensity.

It checks that the inventory's total equals the sum of the main meters'
hourly rows (1e-9 relative), prints a table, writes
bench/results/reports-<UTC timestamp>.json (git-ignored) and prints that path.
Goal: a park-year inventory in under 2 s.

    .venv/bin/python -m bench.reports [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, create_engine, text

from bench.api import LOAD, YEAR_END, YEAR_START, loaded_database
from bench.report import console, environment, timings_table, write_results
from core.meter_kinds import CANONICAL_UNITS, canonical_scales
from core.settings import Settings
from reports import build
from reports.html import inventory_html
from reports.xlsx import inventory_xlsx

SITE, ENTERPRISE, YEAR = "NCK", "NCK-STL1", 2025
NOW = datetime(2026, 1, 15, tzinfo=UTC)  # the year is over: every hour expected
MID_DECEMBER = datetime(2025, 12, 15, tzinfo=UTC)  # the obligation's "now": 2025 nearly done
GOAL_MS = 2000.0


def _totals_sql() -> tuple[str, str]:
    scales = ", ".join(
        f"('{kind}', '{unit}', CAST({scale!r} AS float8), '{canonical}')"
        for kind, unit, scale, canonical in (
            (k, u, sc, CANONICAL_UNITS[k]) for k, u, sc in canonical_scales()
        )
    )
    enterprise = (
        "INSERT INTO enterprise_hourly SELECT h.enterprise_id, min(h.site_id), h.hour, "  # noqa: S608
        "h.kind, min(h.scope), min(s.canonical), sum(h.consumption * s.k), sum(h.co2e_kg), "
        "sum(h.avoided_co2e_kg), count(*), count(*) FILTER (WHERE h.estimated) "
        "FROM hourly_emissions h JOIN meters m ON m.id = h.meter_id "
        f"JOIN (VALUES {scales}) AS s(kind, unit, k, canonical) "
        "ON s.kind = h.kind AND s.unit = h.unit WHERE m.parent_id IS NULL "
        "GROUP BY h.enterprise_id, h.hour, h.kind"
    )
    site = (
        "INSERT INTO site_hourly SELECT site_id, hour, kind, min(scope), min(unit), "
        "sum(consumption), sum(co2e_kg), sum(avoided_co2e_kg), sum(meter_hours), "
        "sum(estimated_meter_hours) FROM enterprise_hourly GROUP BY site_id, hour, kind"
    )
    return enterprise, site


def load(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(LOAD), {"a": YEAR_START, "b": YEAR_END})
            for statement in _totals_sql():
                conn.execute(text(statement))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            return {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())  # noqa: S608
                for t in ("hourly_emissions", "enterprise_hourly", "site_hourly", "meters")
            }
    finally:
        engine.dispose()


def timed(fn: Callable[[], object], runs: int) -> dict[str, Any]:
    fn()  # warm-up: plans, caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "runs": runs,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(times[0], 1),
        "max_ms": round(times[-1], 1),
    }


def cases(conn: Connection) -> dict[str, Callable[[], object]]:
    return {
        "park_json": lambda: build.inventory(conn, SITE, YEAR, now=NOW).model_dump_json(),
        "park_xlsx": lambda: inventory_xlsx(build.inventory(conn, SITE, YEAR, now=NOW)),
        "park_html": lambda: inventory_html(build.inventory(conn, SITE, YEAR, now=NOW)),
        "enterprise_json": lambda: build.inventory(
            conn, SITE, YEAR, enterprise=ENTERPRISE, now=NOW
        ).model_dump_json(),
        "obligation": lambda: build.obligation(conn, SITE, now=MID_DECEMBER),
        "intensity": lambda: build.intensities(conn, SITE, YEAR, now=NOW),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 10)
    with contextlib.ExitStack() as stack:
        settings, counts, _ = loaded_database(stack, load)
        engine = create_engine(settings.database_url)
        stack.callback(engine.dispose)
        with engine.connect() as conn:
            report = build.inventory(conn, SITE, YEAR, now=NOW)
            hourly = conn.execute(
                text(
                    "SELECT sum(h.co2e_kg) FROM hourly_emissions h JOIN meters m "
                    "ON m.id = h.meter_id WHERE m.parent_id IS NULL AND h.site_id = :s "
                    "AND h.hour >= :a AND h.hour < :b"
                ),
                {"s": SITE, "a": report.period.start, "b": report.period.end},
            ).scalar_one()
            equal = math.isclose(report.totals.co2e_kg, hourly, rel_tol=1e-9)
            results = {name: timed(fn, runs) for name, fn in cases(conn).items()}
    headers = ["case", "runs", "median ms", "min ms", "max ms"]
    keys = ["runs", "median_ms", "min_ms", "max_ms"]
    goals = {"park_json": f"< {GOAL_MS:.0f} ms"}
    console.print(timings_table(headers, results, keys, goals))
    console.print(
        f"park-year: {report.totals.tco2e:,.1f} tCO2e over {len(report.enterprises)} "
        f"enterprises; equals the hourly rows: {equal}; load average {os.getloadavg()[0]:.2f}"
    )
    document = {
        "benchmark": "reports",
        "at": datetime.now(UTC).isoformat(),
        "loaded": counts,
        "results": results,
        "totals_equal_hourly": equal,
        "goal": {"park_json_median_ms": GOAL_MS},
        "met": results["park_json"]["median_ms"] < GOAL_MS and equal,
        "environment": environment(Settings()),
        "load_average": os.getloadavg(),
    }
    write_results("reports", document)
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
