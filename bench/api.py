"""HTTP API benchmark: latency of the hourly endpoint (SPEC section 6).

A throw-away database gets the sample park (config/park.yaml) and a full year
(2025) of meter-hours for every meter, loaded with one INSERT ... SELECT; the
enterprise and site totals are then computed by the engine's own
`engine.rollups.refresh_totals`, as the engine keeps them. `emissions api`
runs as a subprocess (uvicorn, one worker) and this process asks, over keep-alive
HTTP, for:

- site_year: GET /v1/emissions/hourly for the site and all of 2025 (8,760 hours,
  every kind), JSON; the first request renders everything (reported apart), the
  measured ones revalidate the rendered days (api/hourly_cache.py);
- site_year_csv: the same as CSV;
- enterprise_month: one enterprise and one month (744 hours), JSON.

Latency is client-side, from sending the request to the last byte of the body,
with the standard library's http.client over one keep-alive connection (httpx's
pure-Python parsing alone adds 3-13 ms to a 5 MB body on this machine).
It prints a table and writes its summary (bench/summary.py: bench/summaries/api.md,
quoted by the docs, and bench/results/api-<UTC time>.json). Goal: p99 <= 50 ms for
the site-year; the exit status is 1 when it is missed.

    .venv/bin/python -m bench.api [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from sqlalchemy import create_engine, text

from bench import ROOT
from bench.report import console, environment, pct, timings_table
from bench.stack.database import create_database
from bench.stack.services import start_api
from bench.summary import Summary
from core.park.loader import load_park
from core.settings import Settings
from engine.rollups import refresh_totals

YEAR_START, YEAR_END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
SITE = "NCK"
ENTERPRISE = "NCK-STL1"
GOAL_P99_MS = 50.0

# One row per meter and hour of 2025: plausible magnitudes, 1 % estimated hours.
LOAD = """
INSERT INTO hourly_emissions (meter_id, hour, site_id, enterprise_id, kind, scope,
    consumption, unit, co2e_kg, avoided_co2e_kg, estimated, factor_value_id)
SELECT m.id, h, m.site_id, m.enterprise_id, m.kind,
       CASE WHEN m.kind IN ('diesel', 'lpg', 'natural_gas') THEN 1
            WHEN m.kind IN ('electricity', 'solar') THEN 2 ELSE 3 END,
       c, m.unit,
       CASE WHEN m.kind = 'solar' THEN 0 ELSE c * v.kgco2e_per_unit END,
       CASE WHEN m.kind = 'solar' THEN c * v.kgco2e_per_unit ELSE 0 END,
       random() < 0.01, v.id
FROM meters m
JOIN LATERAL (SELECT id, kgco2e_per_unit FROM emission_factor_values
              WHERE factor_key = m.factor_key AND valid_from <= :a
              ORDER BY valid_from DESC LIMIT 1) v ON true
CROSS JOIN generate_series(CAST(:a AS timestamptz), CAST(:b AS timestamptz) - interval '1 hour',
                           interval '1 hour') AS h
CROSS JOIN LATERAL (SELECT random() * 500 + 1 AS c OFFSET 0) r
"""


def load(
    settings: Settings, start: datetime = YEAR_START, end: datetime = YEAR_END
) -> dict[str, int]:
    """Meter-hours of every meter over [start, end), and the engine's totals of them."""
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(LOAD), {"a": start, "b": end})
            pairs = conn.execute(
                text("SELECT DISTINCT site_id, enterprise_id FROM meters ORDER BY 1, 2")
            ).all()
        for site, enterprise in pairs:
            with engine.begin() as conn:
                refresh_totals(conn, site, enterprise, start, end)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            counts = {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())  # noqa: S608
                for t in ("hourly_emissions", "enterprise_hourly", "site_hourly")
            }
            counts["meters"] = int(conn.execute(text("SELECT count(*) FROM meters")).scalar_one())
        return counts
    finally:
        engine.dispose()


def loaded_database(
    stack: contextlib.ExitStack, load: Callable[[Settings], dict[str, int]]
) -> tuple[Settings, dict[str, int], float]:
    """A throw-away database with the sample park, filled by `load`: the settings,
    what `load` counted and the seconds it took."""
    settings = create_database(load_park(ROOT / "config" / "park.yaml"), stack)
    console.print(f"database {settings.db_name}: loading a year of meter-hours ...")
    started = time.perf_counter()
    counts = load(settings)
    seconds = time.perf_counter() - started
    console.print(f"loaded {counts} in {seconds:.1f} s")
    return settings, counts, seconds


def get(client: http.client.HTTPConnection, url: str, headers: dict[str, str]) -> bytes:
    client.request("GET", url, headers=headers)
    response = client.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{url}: {response.status} {body[:200]!r}")
    return body


def measure(
    client: http.client.HTTPConnection, url: str, headers: dict[str, str], n: int
) -> dict[str, Any]:
    for _ in range(3):  # warm-up: connection, caches, plans
        get(client, url, headers)
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        size = len(get(client, url, headers))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "requests": n,
        "bytes": size,
        "p50_ms": round(pct(times, 0.50), 2),
        "p99_ms": round(pct(times, 0.99), 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "min_ms": round(times[0], 2),
        "max_ms": round(times[-1], 2),
    }


def latency_table(what: str, results: dict[str, dict[str, Any]], goals: dict[str, str]) -> Table:
    headers = [what, "n", "bytes", "p50 ms", "p99 ms", "mean ms"]
    return timings_table(
        headers, results, ["requests", "bytes", "p50_ms", "p99_ms", "mean_ms"], goals
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--requests", type=int, default=None, help="site-year requests")
    args = parser.parse_args()
    summary = Summary("api", quick=args.quick)  # started now: the summary says how long
    n_year = args.requests or (20 if args.quick else 100)
    n_month = n_year * 4
    with contextlib.ExitStack() as stack:
        settings, counts, load_s = loaded_database(stack, load)
        key = secrets.token_urlsafe(32)
        port = start_api(settings, {"EMISSIONS_ADMIN_API_KEY": key}, stack)
        headers = {"Authorization": f"Bearer {key}"}
        base = f"/v1/emissions/hourly?site={SITE}"
        year = "&start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z"
        month = f"&enterprise={ENTERPRISE}&start=2025-03-01T00:00:00Z&end=2025-04-01T00:00:00Z"
        results: dict[str, Any] = {}
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        stack.callback(client.close)
        started = time.perf_counter()
        first = get(client, base + year, headers)
        cold_ms = round((time.perf_counter() - started) * 1000, 2)
        results["site_year"] = {
            "hours": len(json.loads(first)["items"]),
            "first_request_ms": cold_ms,  # nothing rendered yet (cold cache)
            **measure(client, base + year, headers, n_year),
        }
        results["site_year_csv"] = measure(
            client, base + year, {**headers, "Accept": "text/csv"}, max(n_year // 2, 10)
        )
        results["enterprise_month"] = measure(client, base + month, headers, n_month)
    console.print(latency_table("request", results, {"site_year": f"p99 <= {GOAL_P99_MS:.0f} ms"}))
    console.print(
        f"site_year: {results['site_year']['hours']} hours; first (cold) request "
        f"{results['site_year']['first_request_ms']:.0f} ms; load average {os.getloadavg()[0]:.2f}"
    )
    summary.figure("load: a year of meter-hours and the rollups", load_s, "s")
    summary.figure("site_year first (cold) request", results["site_year"]["first_request_ms"], "ms")
    for name, r in results.items():
        summary.figure(f"{name} p50", r["p50_ms"], "ms")
        if name == "site_year":
            summary.goal(f"{name} p99", r["p99_ms"], "ms", at_most=GOAL_P99_MS)
        else:
            summary.figure(f"{name} p99", r["p99_ms"], "ms")
    return summary.finish(
        {"loaded": counts, "results": results, "environment": environment(Settings())}
    )


if __name__ == "__main__":
    sys.exit(main())
