"""Enterprise and site totals per hour and kind, kept beside `hourly_emissions`.

Totals are what the API, alerts and dashboards read most (a site-year is 8,760
hours of ~60 meters); summing meter-hours on every request would cost hundreds of
milliseconds. The engine recomputes the affected totals from the meter-hours in
the transaction that rewrites them, so they are exact (no running deltas to
drift). Sub-meters are left out: their parent already counts them. Consumption is
summed in each kind's canonical unit.

The unit of work is a set of (enterprise, hour) pairs: a batch of meters touches
many enterprises and hours, and refreshes all of them in two statements (the
enterprise level with its day versions, then the site level from the
enterprises'). The pairs go to the database as runs of consecutive hours, one
index range scan each (a site-year is one run per enterprise). Each statement
upserts its rows from a fresh aggregate and deletes the hour-kinds no
meter-hour is left in. The delete is a set difference (EXCEPT, hashed), not an
anti-join against the aggregate: the planner cannot see the aggregate's size
and a nested-loop anti-join made a year of totals quadratic (299 s for the
sample park). Upserts rather than delete-and-insert keep the hot current-hour
rows HOT-updatable.

Two engines may refresh one total: the caller holds `lock_totals` first, so the
fresh aggregate of a READ COMMITTED statement sees the other engine's committed
meter-hours (docs/engine.md says why this beats REPEATABLE READ retries).

`totals_versions` counts rewrites per enterprise and UTC day, so a reader that
keeps rendered days (the API's hourly cache) can tell in one small query which
days changed. Only the engine writes totals; a hand edit of them would not bump
the versions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, TextClause, text

from core.emissions.hours import HOUR
from core.meter_kinds import CANONICAL_UNITS, canonical_scales

# (site, enterprise, UTC hour start): one hour of one enterprise's totals.
TotalsKey = tuple[str, str, datetime]

_TOTALS = (
    "scope",
    "unit",
    "consumption",
    "co2e_kg",
    "avoided_co2e_kg",
    "meter_hours",
    "estimated_meter_hours",
)
_COLS = ", ".join(_TOTALS)
_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in _TOTALS)
# Rows whose totals did not change are left alone (a rebuild rewrites few).
_CHANGED = "({}) IS DISTINCT FROM ({})".format(
    ", ".join(f"t.{c}" for c in _TOTALS), ", ".join(f"EXCLUDED.{c}" for c in _TOTALS)
)

_RUNS = (
    "runs AS MATERIALIZED (SELECT * FROM unnest(CAST(:s AS text[]), CAST(:e AS text[]), "
    "CAST(:h0 AS timestamptz[]), CAST(:h1 AS timestamptz[])) AS r(s, e, h0, h1))"
)


def _scales() -> str:
    return ", ".join(
        f"('{kind}', '{unit}', CAST({scale!r} AS float8), '{CANONICAL_UNITS[kind]}')"
        for kind, unit, scale in canonical_scales()
    )


# The statements interpolate only this module's constants (S608 is a false alarm).
# LATERAL + OFFSET 0 (never pulled up): one index range scan per run, never a scan
# of the whole table, whatever the planner estimates for the runs.
def _enterprise_statement() -> str:
    """The runs' meter-hours summed per enterprise, hour and kind; upsert, delete
    what has no meter-hour left, bump the day versions."""
    return (
        # Summed per unit first, scaled to the kind's canonical unit after: the
        # scale join then runs over a few aggregate rows, not every meter-hour.
        f"WITH {_RUNS}, per_unit AS MATERIALIZED ("  # noqa: S608
        "SELECT r.e, r.s, h.hour, h.kind, h.unit, min(h.scope) AS scope, "
        "sum(h.consumption) AS consumption, sum(h.co2e_kg) AS co2e_kg, "
        "sum(h.avoided_co2e_kg) AS avoided_co2e_kg, count(*) AS meter_hours, "
        "count(*) FILTER (WHERE h.estimated) AS estimated_meter_hours "
        "FROM runs r CROSS JOIN LATERAL (SELECT * FROM hourly_emissions x "
        "WHERE x.enterprise_id = r.e AND x.hour >= r.h0 AND x.hour < r.h1 OFFSET 0) AS h "
        "WHERE h.meter_id NOT IN (SELECT id FROM meters WHERE parent_id IS NOT NULL) "
        "GROUP BY r.e, r.s, h.hour, h.kind, h.unit), "
        "fresh AS MATERIALIZED (SELECT f.e AS owner, f.s AS site_id, f.hour, f.kind, "
        "min(f.scope) AS scope, min(u.canonical) AS unit, sum(f.consumption * u.k) AS consumption, "
        "sum(f.co2e_kg) AS co2e_kg, sum(f.avoided_co2e_kg) AS avoided_co2e_kg, "
        "sum(f.meter_hours) AS meter_hours, sum(f.estimated_meter_hours) AS estimated_meter_hours "
        f"FROM per_unit f JOIN (VALUES {_scales()}) AS u(kind, unit, k, canonical) "
        "ON u.kind = f.kind AND u.unit = f.unit GROUP BY f.e, f.s, f.hour, f.kind), "
        f"up AS (INSERT INTO enterprise_hourly AS t (enterprise_id, site_id, hour, kind, {_COLS}) "
        f"SELECT owner, site_id, hour, kind, {_COLS} FROM fresh ORDER BY owner, hour, kind "
        f"ON CONFLICT (enterprise_id, hour, kind) DO UPDATE SET {_UPDATE} WHERE {_CHANGED} "
        "RETURNING 1), "
        "gone AS (DELETE FROM enterprise_hourly t USING ("
        "SELECT x.enterprise_id, x.hour, x.kind FROM runs r CROSS JOIN LATERAL (SELECT * "
        "FROM enterprise_hourly y WHERE y.enterprise_id = r.e AND y.hour >= r.h0 "
        "AND y.hour < r.h1 OFFSET 0) AS x "
        "EXCEPT SELECT owner, hour, kind FROM fresh) AS g "
        "WHERE t.enterprise_id = g.enterprise_id AND t.hour = g.hour AND t.kind = g.kind "
        "RETURNING 1), "
        "versions AS (INSERT INTO totals_versions (enterprise_id, day, site_id, version) "
        "SELECT r.e, d, min(r.s), 1 FROM runs r CROSS JOIN LATERAL generate_series("
        "date_trunc('day', r.h0, 'UTC'), r.h1 - interval '1 hour', interval '1 day') AS d "
        "GROUP BY r.e, d ORDER BY r.e, d "
        "ON CONFLICT (enterprise_id, day) DO UPDATE SET version = totals_versions.version + 1 "
        "RETURNING 1) SELECT 1"
    )


# The site's totals are the sums of its enterprises' (already refreshed) totals.
_SITE = (
    "WITH runs AS MATERIALIZED (SELECT * FROM unnest(CAST(:s AS text[]), "  # noqa: S608
    "CAST(:h0 AS timestamptz[]), CAST(:h1 AS timestamptz[])) AS r(s, h0, h1)), "
    "fresh AS MATERIALIZED (SELECT r.s AS owner, t.hour, t.kind, min(t.scope) AS scope, "
    "min(t.unit) AS unit, sum(t.consumption) AS consumption, sum(t.co2e_kg) AS co2e_kg, "
    "sum(t.avoided_co2e_kg) AS avoided_co2e_kg, sum(t.meter_hours) AS meter_hours, "
    "sum(t.estimated_meter_hours) AS estimated_meter_hours FROM runs r CROSS JOIN LATERAL "
    "(SELECT * FROM enterprise_hourly x WHERE x.site_id = r.s AND x.hour >= r.h0 "
    "AND x.hour < r.h1 OFFSET 0) AS t GROUP BY r.s, t.hour, t.kind), "
    f"up AS (INSERT INTO site_hourly AS t (site_id, hour, kind, {_COLS}) "
    f"SELECT owner, hour, kind, {_COLS} FROM fresh ORDER BY owner, hour, kind "
    f"ON CONFLICT (site_id, hour, kind) DO UPDATE SET {_UPDATE} WHERE {_CHANGED} RETURNING 1), "
    "gone AS (DELETE FROM site_hourly t USING ("
    "SELECT x.site_id, x.hour, x.kind FROM runs r CROSS JOIN LATERAL (SELECT * FROM "
    "site_hourly y WHERE y.site_id = r.s AND y.hour >= r.h0 AND y.hour < r.h1 OFFSET 0) AS x "
    "EXCEPT SELECT owner, hour, kind FROM fresh) AS g "
    "WHERE t.site_id = g.site_id AND t.hour = g.hour AND t.kind = g.kind RETURNING 1) "
    "SELECT 1"
)


@cache
def _statements() -> tuple[TextClause, TextClause]:
    return text(_enterprise_statement()), text(_SITE)


# Enterprise-hours above which a refresh is a rebuild-size one.
_LARGE = 5000


def hour_runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Distinct hour starts as runs [first, last + 1 h) of consecutive hours."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def lock_totals(conn: Connection, keys: Iterable[TotalsKey]) -> None:
    """Transaction-scoped locks on the enterprises and sites whose totals `keys`
    touch, taken in one sorted order so two engines never deadlock on them. Held
    to commit, they make totals of one enterprise a critical section: the next
    holder's statements start after the previous holder committed."""
    names = sorted({f"site:{s}" for s, _, _ in keys} | {f"ent:{e}" for _, e, _ in keys})
    if names:
        conn.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended('totals:' || n, 0))) "
                "FROM (SELECT unnest(CAST(:n AS text[])) AS n ORDER BY 1) AS k"
            ),
            {"n": names},
        )


def refresh_totals_at(conn: Connection, keys: Iterable[TotalsKey]) -> None:
    """Make the enterprise and site totals of exactly these hours match the
    meter-hours now stored, and bump the version of each UTC day they touch."""
    by_enterprise: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    by_site: dict[str, list[datetime]] = defaultdict(list)
    for site_id, enterprise_id, hour in keys:
        by_enterprise[(site_id, enterprise_id)].append(hour)
        by_site[site_id].append(hour)
    ranges = [(o, r) for o, hours in sorted(by_enterprise.items()) for r in hour_runs(hours)]
    if not ranges:
        return
    enterprise, site = _statements()
    if sum((h1 - h0) // HOUR for _, (h0, h1) in ranges) > _LARGE:
        # Aggregates and set differences in memory (hashed), not sorted on disk.
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
    conn.execute(
        enterprise,
        {
            "s": [s for (s, _), _ in ranges],
            "e": [e for (_, e), _ in ranges],
            "h0": [h0 for _, (h0, _) in ranges],
            "h1": [h1 for _, (_, h1) in ranges],
        },
    )
    sites = [(s, r) for s, hours in sorted(by_site.items()) for r in hour_runs(hours)]
    conn.execute(
        site,
        {
            "s": [s for s, _ in sites],
            "h0": [h0 for _, (h0, _) in sites],
            "h1": [h1 for _, (_, h1) in sites],
        },
    )


def refresh_totals(
    conn: Connection, site_id: str, enterprise_id: str, h0: datetime, h1: datetime
) -> None:
    """`refresh_totals_at` for every hour in [h0, h1) (a rebuild, a benchmark)."""
    refresh_all_totals(conn, [(site_id, enterprise_id)], h0, h1)


def refresh_all_totals(
    conn: Connection, owners: Iterable[tuple[str, str]], h0: datetime, h1: datetime
) -> None:
    """Totals of every hour in [h0, h1) of these (site, enterprise) pairs, each
    site's once for all its enterprises."""
    count = (h1 - h0) // HOUR
    hours = [h0 + i * HOUR for i in range(count)]
    refresh_totals_at(conn, ((s, e, h) for s, e in owners for h in hours))
