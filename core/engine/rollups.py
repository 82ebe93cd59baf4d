"""Enterprise and site totals per hour and kind, kept beside `hourly_emissions`.

Totals are what the API, alerts and dashboards read most (a site-year is 8,760
hours of ~60 meters); summing meter-hours on every request would cost hundreds of
milliseconds. The engine recomputes the affected totals from the meter-hours in
the same REPEATABLE READ transaction that rewrites them, so they are exact (no
running deltas to drift) and two engines touching one total conflict and retry
instead of overwriting each other. Sub-meters are left out: their parent already
counts them. Consumption is summed in each kind's canonical unit.

All of it is one statement (one round trip per meter refresh): each level is
upserted from a fresh aggregate and rows whose hour-kind no longer has any
meter-hour are deleted; upserts rather than delete-and-insert keep the hot
current-hour rows HOT-updatable.

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


# The statement interpolates only this module's constants (S608 is a false alarm).
def _fresh(owner: str, param: str) -> str:
    """Aggregate of the meter-hours of one enterprise or site over [h0, h1)."""
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
        f"WHERE h.{owner} = :{param} AND h.hour >= :h0 AND h.hour < :h1 "
        "AND m.parent_id IS NULL GROUP BY h.hour, h.kind"
    )


def _level(table: str, key: str, columns: str, values: str, fresh: str, owner: str) -> str:
    cols = ", ".join(_TOTALS)
    return (
        f"up_{table} AS (INSERT INTO {table} ({columns}, hour, kind, {cols}) "  # noqa: S608
        f"SELECT {values}, hour, kind, {cols} FROM {fresh} "
        f"ON CONFLICT ({key}, hour, kind) DO UPDATE SET {_UPDATE} RETURNING 1), "
        f"gone_{table} AS (DELETE FROM {table} t WHERE t.{owner} AND t.hour >= :h0 "
        f"AND t.hour < :h1 AND NOT EXISTS (SELECT 1 FROM {fresh} f "
        "WHERE f.hour = t.hour AND f.kind = t.kind) RETURNING 1)"
    )


@cache
def _statement() -> TextClause:
    return text(
        f"WITH fresh_e AS ({_fresh('enterprise_id', 'e')}), "  # noqa: S608
        f"fresh_s AS ({_fresh('site_id', 's')}), "
        + _level(
            "enterprise_hourly",
            "enterprise_id",
            "enterprise_id, site_id",
            ":e, :s",
            "fresh_e",
            "enterprise_id = :e",
        )
        + ", "
        + _level("site_hourly", "site_id", "site_id", ":s", "fresh_s", "site_id = :s")
        + ", versions AS (INSERT INTO totals_versions (enterprise_id, day, site_id, version) "
        "SELECT :e, d, :s, 1 FROM generate_series(date_trunc('day', "
        "CAST(:h0 AS timestamptz), 'UTC'), CAST(:h1 AS timestamptz) - interval '1 hour', "
        "interval '1 day') AS d "
        "ON CONFLICT (enterprise_id, day) DO UPDATE SET version = totals_versions.version + 1 "
        "RETURNING 1) SELECT 1"
    )


def refresh_totals(
    conn: Connection, site_id: str, enterprise_id: str, h0: datetime, h1: datetime
) -> None:
    """Make the enterprise's and the site's totals for hours [h0, h1) match the
    meter-hours now stored, and bump the version of each UTC day they touch."""
    conn.execute(_statement(), {"s": site_id, "e": enterprise_id, "h0": h0, "h1": h1})
