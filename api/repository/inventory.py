"""SQL of the MRV inventory: a site's (or enterprise's) year per local month and kind.

Figures come from the engine's totals (sub-meters excluded). The factor values
listed for a month and kind are those of the kind's meters' factors whose validity
([valid_from, next valid_from)) overlaps the month: exactly the values the engine
applies to those hours, since a meter-hour uses the value valid at its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from api.scope import Scope


def monthly_kinds(
    conn: Connection, scope: Scope, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    table, owner = (
        ("enterprise_hourly", "enterprise_id = :id")
        if scope.enterprise_id
        else ("site_hourly", "site_id = :id")
    )
    rows = conn.execute(
        text(
            "SELECT date_trunc('month', hour, :tz) AS month, kind, min(scope) AS scope, "  # noqa: S608
            "min(unit) AS unit, sum(consumption) AS consumption, sum(co2e_kg) AS co2e_kg, "
            "sum(avoided_co2e_kg) AS avoided_co2e_kg, sum(meter_hours) AS meter_hours, "
            "sum(estimated_meter_hours) AS estimated_meter_hours "
            f"FROM {table} WHERE {owner} AND hour >= :a AND hour < :b "
            "GROUP BY 1, 2 ORDER BY 1, 3, 2"
        ),
        {"tz": scope.timezone, "id": scope.enterprise_id or scope.site_id, "a": start, "b": end},
    )
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True)
class MeterSpan:
    kind: str
    commissioned_at: datetime


def meters_in_totals(conn: Connection, scope: Scope) -> list[MeterSpan]:
    """Active main meters (no parent) of the site or enterprise: what totals count."""
    rows = conn.execute(
        text(
            "SELECT kind, commissioned_at FROM meters WHERE site_id = :s AND active "
            "AND parent_id IS NULL AND (CAST(:e AS text) IS NULL OR enterprise_id = :e)"
        ),
        {"s": scope.site_id, "e": scope.enterprise_id},
    )
    return [MeterSpan(r.kind, r.commissioned_at) for r in rows]


def factor_values(
    conn: Connection, scope: Scope, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "WITH v AS (SELECT f.key, f.unit, v.valid_from, v.kgco2e_per_unit, v.source, "
            "lead(v.valid_from) OVER (PARTITION BY v.factor_key ORDER BY v.valid_from) "
            "AS valid_to FROM emission_factor_values v "
            "JOIN emission_factors f ON f.key = v.factor_key) "
            "SELECT DISTINCT m.kind, v.key, v.unit, v.valid_from, v.valid_to, "
            "v.kgco2e_per_unit, v.source FROM meters m JOIN v ON v.key = m.factor_key "
            "WHERE m.site_id = :s AND m.parent_id IS NULL "
            "AND (CAST(:e AS text) IS NULL OR m.enterprise_id = :e) "
            "AND v.valid_from < :b AND (v.valid_to IS NULL OR v.valid_to > :a) "
            "ORDER BY m.kind, v.key, v.valid_from"
        ),
        {"s": scope.site_id, "e": scope.enterprise_id, "a": start, "b": end},
    )
    return [dict(r._mapping) for r in rows]
