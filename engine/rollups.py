"""Enterprise and site totals per hour and kind, kept beside `hourly_emissions`.

Totals are what the API, alerts and dashboards read most (a site-year is 8,760
hours of ~60 meters); summing meter-hours on every request would cost hundreds of
milliseconds. The engine recomputes the affected totals from the meter-hours in
the same REPEATABLE READ transaction that rewrites them, so they are exact (no
running deltas to drift) and two engines touching one total conflict and retry
instead of overwriting each other. Sub-meters are left out: their parent already
counts them. Consumption is summed in each kind's canonical unit.

Two statements per meter refresh (the enterprise level with its day versions,
then the site level from the enterprises'): each upserts its rows from a fresh
aggregate and deletes the hour-kinds no meter-hour is left in; upserts rather
than delete-and-insert keep the hot current-hour rows HOT-updatable.

`totals_versions` counts rewrites per enterprise and UTC day, so a reader that
keeps rendered days (the API's hourly cache) can tell in one small query which
days changed. Only the engine writes totals; a hand edit of them would not bump
the versions.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import Connection, TextClause, text

from core.units import CANONICAL_UNITS, canonical_scales

_TOTALS = (
    "scope",
    "unit",
    "consumption",
    "co2e_kg",
    "avoided_co2e_kg",
    "meter_hours",
    "estimated_meter_hours",
)
_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in _TOTALS)


# The statements interpolate only this module's constants (S608 is a false alarm).
def _enterprise_fresh() -> str:
    """The enterprise's meter-hours over [h0, h1), summed per hour and kind."""
    scales = ", ".join(
        f"('{kind}', '{unit}', CAST({scale!r} AS float8), '{CANONICAL_UNITS[kind]}')"
        for kind, unit, scale in canonical_scales()
    )
    return (
        "SELECT h.hour, h.kind, min(h.scope) AS scope, min(s.canonical) AS unit, "  # noqa: S608
        "sum(h.consumption * s.k) AS consumption, sum(h.co2e_kg) AS co2e_kg, "
        "sum(h.avoided_co2e_kg) AS avoided_co2e_kg, count(*) AS meter_hours, "
        "count(*) FILTER (WHERE h.estimated) AS estimated_meter_hours "
        "FROM hourly_emissions h JOIN meters m ON m.id = h.meter_id "
        f"JOIN (VALUES {scales}) AS s(kind, unit, k, canonical) "
        "ON s.kind = h.kind AND s.unit = h.unit "
        "WHERE h.enterprise_id = :e AND h.hour >= :h0 AND h.hour < :h1 "
        "AND m.parent_id IS NULL GROUP BY h.hour, h.kind"
    )


# The site's totals are the sums of its enterprises' (already refreshed) totals.
_SITE_FRESH = (
    "SELECT hour, kind, min(scope) AS scope, min(unit) AS unit, "
    "sum(consumption) AS consumption, sum(co2e_kg) AS co2e_kg, "
    "sum(avoided_co2e_kg) AS avoided_co2e_kg, sum(meter_hours) AS meter_hours, "
    "sum(estimated_meter_hours) AS estimated_meter_hours FROM enterprise_hourly "
    "WHERE site_id = :s AND hour >= :h0 AND hour < :h1 GROUP BY hour, kind"
)

_VERSIONS = (
    ", versions AS (INSERT INTO totals_versions (enterprise_id, day, site_id, version) "
    "SELECT :e, d, :s, 1 FROM generate_series(date_trunc('day', "
    "CAST(:h0 AS timestamptz), 'UTC'), CAST(:h1 AS timestamptz) - interval '1 hour', "
    "interval '1 day') AS d "
    "ON CONFLICT (enterprise_id, day) DO UPDATE SET version = totals_versions.version + 1 "
    "RETURNING 1)"
)


def _upsert(table: str, fresh: str, owner: str, param: str, *, also: str = "") -> str:
    """Upsert `table`'s hour-kinds of `owner` = `param` from `fresh` and delete those
    with no meter-hour left; `also` adds CTEs run in the same statement."""
    cols = ", ".join(_TOTALS)
    site = ", site_id" if owner != "site_id" else ""
    site_value = ", :s" if site else ""
    return (
        f"WITH fresh AS ({fresh}), "  # noqa: S608
        f"up AS (INSERT INTO {table} ({owner}{site}, hour, kind, {cols}) "
        f"SELECT {param}{site_value}, hour, kind, {cols} FROM fresh "
        f"ON CONFLICT ({owner}, hour, kind) DO UPDATE SET {_UPDATE} RETURNING 1), "
        f"gone AS (DELETE FROM {table} t WHERE t.{owner} = {param} "
        "AND t.hour >= :h0 AND t.hour < :h1 AND NOT EXISTS "
        "(SELECT 1 FROM fresh f WHERE f.hour = t.hour AND f.kind = t.kind) RETURNING 1)"
        f"{also} SELECT 1"
    )


@cache
def _statements() -> tuple[TextClause, TextClause]:
    return (
        text(
            _upsert("enterprise_hourly", _enterprise_fresh(), "enterprise_id", ":e", also=_VERSIONS)
        ),
        text(_upsert("site_hourly", _SITE_FRESH, "site_id", ":s")),
    )


def refresh_totals(
    conn: Connection, site_id: str, enterprise_id: str, h0: datetime, h1: datetime
) -> None:
    """Make the enterprise's and the site's totals for hours [h0, h1) match the
    meter-hours now stored, and bump the version of each UTC day they touch."""
    params = {"s": site_id, "e": enterprise_id, "h0": h0, "h1": h1}
    for statement in _statements():
        conn.execute(statement, params)
