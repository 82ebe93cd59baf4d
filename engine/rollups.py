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
enterprises'). Each upserts its rows from a fresh aggregate and deletes the
hour-kinds no meter-hour is left in. The delete is a set difference (EXCEPT,
hashed), not an anti-join against the aggregate: the planner cannot see the
aggregate's size and a nested-loop anti-join made a year of totals quadratic
(299 s for the sample park). Upserts rather than delete-and-insert keep the hot
current-hour rows HOT-updatable.

Two engines may refresh one total: the caller holds `lock_totals` first, so the
fresh aggregate of a READ COMMITTED statement sees the other engine's committed
meter-hours (docs/engine.md says why this beats REPEATABLE READ retries).

`totals_versions` counts rewrites per enterprise and UTC day, so a reader that
keeps rendered days (the API's hourly cache) can tell in one small query which
days changed. Only the engine writes totals; a hand edit of them would not bump
the versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, TextClause, text

from core.emissions.hours import HOUR
from core.units import CANONICAL_UNITS, canonical_scales

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

_PAIRS = (
    "pairs AS MATERIALIZED (SELECT DISTINCT s, e, h FROM unnest(CAST(:s AS text[]), "
    "CAST(:e AS text[]), CAST(:h AS timestamptz[])) AS p(s, e, h))"
)


# The statements interpolate only this module's constants (S608 is a false alarm).
def _enterprise_statement() -> str:
    """The pairs' meter-hours summed per enterprise, hour and kind; upsert, delete
    what has no meter-hour left, bump the day versions."""
    scales = ", ".join(
        f"('{kind}', '{unit}', CAST({scale!r} AS float8), '{CANONICAL_UNITS[kind]}')"
        for kind, unit, scale in canonical_scales()
    )
    return (
        f"WITH {_PAIRS}, fresh AS MATERIALIZED ("  # noqa: S608
        "SELECT p.e AS owner, p.s AS site_id, h.hour, h.kind, min(h.scope) AS scope, "
        "min(u.canonical) AS unit, sum(h.consumption * u.k) AS consumption, "
        "sum(h.co2e_kg) AS co2e_kg, sum(h.avoided_co2e_kg) AS avoided_co2e_kg, "
        "count(*) AS meter_hours, count(*) FILTER (WHERE h.estimated) AS estimated_meter_hours "
        "FROM pairs p JOIN hourly_emissions h ON h.enterprise_id = p.e AND h.hour = p.h "
        "JOIN meters m ON m.id = h.meter_id "
        f"JOIN (VALUES {scales}) AS u(kind, unit, k, canonical) "
        "ON u.kind = h.kind AND u.unit = h.unit "
        "WHERE m.parent_id IS NULL GROUP BY p.e, p.s, h.hour, h.kind), "
        f"up AS (INSERT INTO enterprise_hourly (enterprise_id, site_id, hour, kind, {_COLS}) "
        f"SELECT owner, site_id, hour, kind, {_COLS} FROM fresh ORDER BY owner, hour, kind "
        f"ON CONFLICT (enterprise_id, hour, kind) DO UPDATE SET {_UPDATE} RETURNING 1), "
        "gone AS (DELETE FROM enterprise_hourly t USING ("
        "SELECT x.enterprise_id, x.hour, x.kind FROM enterprise_hourly x "
        "JOIN pairs p ON x.enterprise_id = p.e AND x.hour = p.h "
        "EXCEPT SELECT owner, hour, kind FROM fresh) AS g "
        "WHERE t.enterprise_id = g.enterprise_id AND t.hour = g.hour AND t.kind = g.kind "
        "RETURNING 1), "
        "versions AS (INSERT INTO totals_versions (enterprise_id, day, site_id, version) "
        "SELECT e, date_trunc('day', h, 'UTC') AS d, min(s), 1 FROM pairs GROUP BY e, d "
        "ORDER BY e, d "
        "ON CONFLICT (enterprise_id, day) DO UPDATE SET version = totals_versions.version + 1 "
        "RETURNING 1) SELECT 1"
    )


# The site's totals are the sums of its enterprises' (already refreshed) totals.
_SITE = (
    "WITH pairs AS MATERIALIZED (SELECT DISTINCT s, h FROM unnest(CAST(:s AS text[]), "  # noqa: S608
    "CAST(:h AS timestamptz[])) AS p(s, h)), "
    "fresh AS MATERIALIZED (SELECT p.s AS owner, t.hour, t.kind, min(t.scope) AS scope, "
    "min(t.unit) AS unit, sum(t.consumption) AS consumption, sum(t.co2e_kg) AS co2e_kg, "
    "sum(t.avoided_co2e_kg) AS avoided_co2e_kg, sum(t.meter_hours) AS meter_hours, "
    "sum(t.estimated_meter_hours) AS estimated_meter_hours FROM pairs p "
    "JOIN enterprise_hourly t ON t.site_id = p.s AND t.hour = p.h "
    "GROUP BY p.s, t.hour, t.kind), "
    f"up AS (INSERT INTO site_hourly (site_id, hour, kind, {_COLS}) "
    f"SELECT owner, hour, kind, {_COLS} FROM fresh ORDER BY owner, hour, kind "
    f"ON CONFLICT (site_id, hour, kind) DO UPDATE SET {_UPDATE} RETURNING 1), "
    "gone AS (DELETE FROM site_hourly t USING ("
    "SELECT x.site_id, x.hour, x.kind FROM site_hourly x JOIN pairs p "
    "ON x.site_id = p.s AND x.hour = p.h EXCEPT SELECT owner, hour, kind FROM fresh) AS g "
    "WHERE t.site_id = g.site_id AND t.hour = g.hour AND t.kind = g.kind RETURNING 1) "
    "SELECT 1"
)


@cache
def _statements() -> tuple[TextClause, TextClause]:
    return text(_enterprise_statement()), text(_SITE)


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
    unique = sorted(set(keys))
    if not unique:
        return
    sites = [s for s, _, _ in unique]
    hours = [h for _, _, h in unique]
    enterprise, site = _statements()
    conn.execute(enterprise, {"s": sites, "e": [e for _, e, _ in unique], "h": hours})
    conn.execute(site, {"s": sites, "h": hours})


def refresh_totals(
    conn: Connection, site_id: str, enterprise_id: str, h0: datetime, h1: datetime
) -> None:
    """`refresh_totals_at` for every hour in [h0, h1) (a rebuild, a benchmark)."""
    count = (h1 - h0) // HOUR
    refresh_totals_at(conn, ((site_id, enterprise_id, h0 + i * HOUR) for i in range(count)))
