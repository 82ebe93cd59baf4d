"""Enterprise and site totals per hour and kind, kept beside `hourly_emissions`.

Totals are what the API, alerts and dashboards read most (a site-year is 8,760
hours of ~60 meters); summing meter-hours on every request would cost hundreds of
milliseconds. The engine recomputes the affected totals from the meter-hours in
the same REPEATABLE READ transaction that rewrites them, so they are exact (no
running deltas to drift) and two engines touching one total conflict and retry
instead of overwriting each other. Sub-meters are left out: their parent already
counts them. Consumption is summed in each kind's canonical unit.

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

_TOTALS = "consumption, co2e_kg, avoided_co2e_kg, meter_hours, estimated_meter_hours"
_UPDATE = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in ("scope", "unit", *(c.strip() for c in _TOTALS.split(",")))
)


# The statements interpolate only this module's constants (S608 is a false alarm).
def _scales_sql() -> str:
    rows = ", ".join(
        f"('{kind}', '{unit}', CAST({scale!r} AS float8), '{CANONICAL_UNITS[kind]}')"
        for kind, unit, scale in canonical_scales()
    )
    return f"(VALUES {rows}) AS s(kind, unit, k, canonical)"


@cache
def _statements() -> tuple[TextClause, ...]:
    return (
        text(
            "DELETE FROM enterprise_hourly WHERE enterprise_id = :e AND hour >= :h0 AND hour < :h1"
        ),
        text(
            "INSERT INTO enterprise_hourly (enterprise_id, site_id, hour, kind, scope, unit, "  # noqa: S608
            f"{_TOTALS}) "
            "SELECT h.enterprise_id, min(h.site_id), h.hour, h.kind, min(h.scope), "
            "min(s.canonical), sum(h.consumption * s.k), sum(h.co2e_kg), "
            "sum(h.avoided_co2e_kg), count(*), count(*) FILTER (WHERE h.estimated) "
            f"FROM hourly_emissions h JOIN meters m ON m.id = h.meter_id JOIN {_scales_sql()} "
            "ON s.kind = h.kind AND s.unit = h.unit "
            "WHERE h.enterprise_id = :e AND h.hour >= :h0 AND h.hour < :h1 "
            "AND m.parent_id IS NULL "
            "GROUP BY h.enterprise_id, h.hour, h.kind "
            f"ON CONFLICT (enterprise_id, hour, kind) DO UPDATE SET {_UPDATE}"
        ),
        text("DELETE FROM site_hourly WHERE site_id = :s AND hour >= :h0 AND hour < :h1"),
        text(
            f"INSERT INTO site_hourly (site_id, hour, kind, scope, unit, {_TOTALS}) "  # noqa: S608
            "SELECT site_id, hour, kind, min(scope), min(unit), sum(consumption), "
            "sum(co2e_kg), sum(avoided_co2e_kg), sum(meter_hours), "
            "sum(estimated_meter_hours) FROM enterprise_hourly "
            "WHERE site_id = :s AND hour >= :h0 AND hour < :h1 GROUP BY site_id, hour, kind "
            f"ON CONFLICT (site_id, hour, kind) DO UPDATE SET {_UPDATE}"
        ),
        text(
            "INSERT INTO totals_versions (enterprise_id, day, site_id, version) "
            "SELECT :e, d, :s, 1 FROM generate_series(date_trunc('day', "
            "CAST(:h0 AS timestamptz), 'UTC'), CAST(:h1 AS timestamptz) - interval '1 hour', "
            "interval '1 day') AS d "
            "ON CONFLICT (enterprise_id, day) DO UPDATE SET version = totals_versions.version + 1"
        ),
    )


def refresh_totals(
    conn: Connection, site_id: str, enterprise_id: str, h0: datetime, h1: datetime
) -> None:
    """Make the enterprise's and the site's totals for hours [h0, h1) match the
    meter-hours now stored, and bump the version of each UTC day they touch."""
    params = {"s": site_id, "e": enterprise_id, "h0": h0, "h1": h1}
    for statement in _statements():
        conn.execute(statement, params)
