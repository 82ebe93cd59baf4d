"""SQL of the emissions engine's computation: meters, raw readings, hourly rows, events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from core.emissions.counters import QualityEvent, Reading, Replacement
from core.emissions.hours import HOUR
from engine.rollups import refresh_totals


@dataclass(frozen=True, slots=True)
class MeterSpec:
    id: str
    site_id: str
    enterprise_id: str
    kind: str
    unit: str
    reading: str
    rollover: float | None
    interval_s: int | None
    max_gap_s: int
    max_rate_per_h: float | None
    factor_key: str
    factor_unit: str
    parent_id: str | None


@dataclass(frozen=True, slots=True)
class HourRow:
    hour: datetime
    consumption: float
    co2e_kg: float
    avoided_co2e_kg: float
    estimated: bool
    factor_value_id: int | None
    scope: int


def computed_until(conn: Connection, meter_id: str) -> datetime | None:
    """The last reading already priced into the meter's hours (its watermark)."""
    value = conn.execute(
        text("SELECT computed_until FROM meter_engine_state WHERE meter_id = :m"),
        {"m": meter_id},
    ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def set_computed_until(conn: Connection, meter_id: str, ts: datetime | None) -> None:
    if ts is None:
        conn.execute(text("DELETE FROM meter_engine_state WHERE meter_id = :m"), {"m": meter_id})
        return
    conn.execute(
        text(
            "INSERT INTO meter_engine_state (meter_id, computed_until) VALUES (:m, :t) "
            "ON CONFLICT (meter_id) DO UPDATE SET computed_until = EXCLUDED.computed_until"
        ),
        {"m": meter_id, "t": ts},
    )


def last_reading_ts(conn: Connection, meter_id: str) -> datetime | None:
    value = conn.execute(
        text("SELECT max(ts) FROM readings WHERE meter_id = :m"), {"m": meter_id}
    ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def stored_hours(
    conn: Connection, meter_id: str, h0: datetime, h1: datetime
) -> dict[datetime, tuple[float, bool]]:
    rows = conn.execute(
        text(
            "SELECT hour, consumption, estimated FROM hourly_emissions "
            "WHERE meter_id = :m AND hour >= :h0 AND hour < :h1"
        ),
        {"m": meter_id, "h0": h0, "h1": h1},
    )
    return {r.hour: (r.consumption, r.estimated) for r in rows}


def meter_spec(conn: Connection, meter_id: str) -> MeterSpec | None:
    row = conn.execute(
        text(
            "SELECT m.id, m.site_id, m.enterprise_id, m.kind, m.unit, m.reading, m.rollover, "
            "m.interval_s, m.max_gap_s, m.max_rate_per_h, m.factor_key, f.unit AS factor_unit, "
            "m.parent_id "
            "FROM meters m JOIN emission_factors f ON f.key = m.factor_key WHERE m.id = :m"
        ),
        {"m": meter_id},
    ).one_or_none()
    return MeterSpec(**row._mapping) if row is not None else None


def readings_before(conn: Connection, meter_id: str, t: datetime, n: int) -> list[Reading]:
    """The last n readings strictly before t, in time order."""
    rows = conn.execute(
        text(
            "SELECT ts, value FROM readings WHERE meter_id = :m AND ts < :t "
            "ORDER BY ts DESC LIMIT :n"
        ),
        {"m": meter_id, "t": t, "n": n},
    ).all()
    return [Reading(r.ts, r.value) for r in reversed(rows)]


def readings_from(conn: Connection, meter_id: str, t: datetime, n: int) -> list[Reading]:
    """The first n readings at or after t, in time order."""
    rows = conn.execute(
        text(
            "SELECT ts, value FROM readings WHERE meter_id = :m AND ts >= :t ORDER BY ts LIMIT :n"
        ),
        {"m": meter_id, "t": t, "n": n},
    )
    return [Reading(r.ts, r.value) for r in rows]


def readings_between(conn: Connection, meter_id: str, t0: datetime, t1: datetime) -> list[Reading]:
    """Readings with t0 <= ts <= t1, in time order."""
    rows = conn.execute(
        text(
            "SELECT ts, value FROM readings WHERE meter_id = :m AND ts BETWEEN :t0 AND :t1 "
            "ORDER BY ts"
        ),
        {"m": meter_id, "t0": t0, "t1": t1},
    )
    return [Reading(r.ts, r.value) for r in rows]


def replacements(conn: Connection, meter_id: str) -> list[Replacement]:
    rows = conn.execute(
        text(
            "SELECT replaced_at, old_final_value, new_start_value FROM meter_replacements "
            "WHERE meter_id = :m ORDER BY replaced_at"
        ),
        {"m": meter_id},
    )
    return [Replacement(r.replaced_at, r.old_final_value, r.new_start_value) for r in rows]


def factor_values(conn: Connection, factor_key: str) -> list[tuple[datetime, float, int]]:
    rows = conn.execute(
        text(
            "SELECT valid_from, kgco2e_per_unit, id FROM emission_factor_values "
            "WHERE factor_key = :k ORDER BY valid_from"
        ),
        {"k": factor_key},
    )
    return [(r.valid_from, r.kgco2e_per_unit, r.id) for r in rows]


def replace_hours(
    conn: Connection, meter: MeterSpec, h0: datetime, h1: datetime, rows: Sequence[HourRow]
) -> None:
    """Make the meter's stored hours in [h0, h1) exactly `rows`, and the totals
    they are part of (sub-meters are in no total)."""
    deleted = (
        conn.execute(
            text(
                "DELETE FROM hourly_emissions WHERE meter_id = :m AND hour >= :h0 AND hour < :h1 "
                "RETURNING hour"
            ),
            {"m": meter.id, "h0": h0, "h1": h1},
        )
        .scalars()
        .all()
    )
    _insert_hours(conn, meter, rows)
    # Only hours that had or now have a row can change a total ([h0, h1) may be open-ended).
    touched = [*deleted, *(r.hour for r in rows)]
    if touched and meter.parent_id is None:
        refresh_totals(conn, meter.site_id, meter.enterprise_id, min(touched), max(touched) + HOUR)


def _insert_hours(conn: Connection, meter: MeterSpec, rows: Sequence[HourRow]) -> None:
    if not rows:
        return
    params: list[dict[str, Any]] = [
        {
            "m": meter.id,
            "hour": r.hour,
            "site": meter.site_id,
            "ent": meter.enterprise_id,
            "kind": meter.kind,
            "scope": r.scope,
            "consumption": r.consumption,
            "unit": meter.unit,
            "co2e": r.co2e_kg,
            "avoided": r.avoided_co2e_kg,
            "estimated": r.estimated,
            "fv": r.factor_value_id,
        }
        for r in rows
    ]
    conn.execute(
        text(
            "INSERT INTO hourly_emissions (meter_id, hour, site_id, enterprise_id, kind, scope, "
            "consumption, unit, co2e_kg, avoided_co2e_kg, estimated, factor_value_id) VALUES "
            "(:m, :hour, :site, :ent, :kind, :scope, :consumption, :unit, :co2e, :avoided, "
            ":estimated, :fv)"
        ),
        params,
    )


def replace_events(
    conn: Connection, meter_id: str, t0: datetime, t1: datetime, events: Sequence[QualityEvent]
) -> None:
    """Make the meter's data-quality events with t0 < ts <= t1 exactly `events`. An
    event found again keeps its `detected_at` (alert rules count by detection)."""
    rows = [
        {"m": meter_id, "ts": e.ts, "kind": e.kind, "detail": json.dumps(e.detail)}
        for e in events
        if t0 < e.ts <= t1 and e.kind != "replacement"
    ]
    conn.execute(
        text(
            "DELETE FROM data_quality_events d WHERE meter_id = :m AND ts > :t0 AND ts <= :t1 "
            "AND kind <> 'replacement' AND NOT EXISTS (SELECT 1 FROM unnest("
            "CAST(:tss AS timestamptz[]), CAST(:kinds AS text[])) AS k(ts, kind) "
            "WHERE k.ts = d.ts AND k.kind = d.kind)"
        ),
        {
            "m": meter_id,
            "t0": t0,
            "t1": t1,
            "tss": [r["ts"] for r in rows],
            "kinds": [r["kind"] for r in rows],
        },
    )
    if rows:
        conn.execute(
            text(
                "INSERT INTO data_quality_events (meter_id, ts, kind, detail) "
                "VALUES (:m, :ts, :kind, CAST(:detail AS jsonb)) "
                "ON CONFLICT (meter_id, ts, kind) DO UPDATE SET detail = EXCLUDED.detail"
            ),
            rows,
        )


def accepted_ends(conn: Connection, meter_id: str) -> set[datetime]:
    """Ends of the meter's intervals an admin accepted despite the plausibility guard."""
    rows = conn.execute(
        text("SELECT t1 FROM accepted_intervals WHERE meter_id = :m"), {"m": meter_id}
    )
    return {r.t1 for r in rows}


def live_rates(conn: Connection, now: datetime) -> list[tuple[str, str, float]]:
    """(site, enterprise, kgCO2e/h) over the trailing hour: the current hour so far
    plus the elapsed-complement share of the previous one. Sub-meters are left out
    (their parents already count them)."""
    rows = conn.execute(
        text(
            "SELECT h.site_id, h.enterprise_id, "
            "sum(CASE WHEN h.hour = date_trunc('hour', CAST(:now AS timestamptz), 'UTC') "
            "THEN h.co2e_kg ELSE h.co2e_kg * (1 - extract(epoch FROM CAST(:now AS timestamptz) "
            "- date_trunc('hour', CAST(:now AS timestamptz), 'UTC')) / 3600) END) AS rate "
            "FROM hourly_emissions h JOIN meters m ON m.id = h.meter_id "
            "WHERE m.parent_id IS NULL AND h.hour >= date_trunc('hour', "
            "CAST(:now AS timestamptz), 'UTC') - interval '1 hour' "
            "AND h.hour <= CAST(:now AS timestamptz) "
            "GROUP BY h.site_id, h.enterprise_id ORDER BY 1, 2"
        ),
        {"now": now},
    )
    return [(r.site_id, r.enterprise_id, float(r.rate)) for r in rows]
