"""SQL of the emissions engine's inputs for a batch of meters: specs, watermarks,
replacements, factor values; and the live rate. Readings: `engine.reads`; writes:
`engine.writes`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from core.emissions.counters import Replacement


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
    max_rate_per_h: float | None  # the plausibility guard (core/emissions/plausibility.py)
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


def driver_cursor(conn: Connection) -> Any:
    """The driver's cursor on the connection's transaction: rows as plain tuples, and
    `%b` parameters, which send lists as binary arrays (5x faster to build than text
    arrays, whose quoting psycopg checks element by element). Results come in binary
    too: a timestamp is then 8 bytes to decode, not text to parse, which doubles the
    rate at which a recomputation reads its readings."""
    return conn.connection.dbapi_connection.cursor(binary=True)  # type: ignore[union-attr]


def watermarks(conn: Connection, meter_ids: list[str]) -> dict[str, datetime]:
    """Per meter, the last reading already priced into its hours. Only the engine
    holding a meter writes its watermark, so it stays valid for the transaction."""
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT meter_id, computed_until FROM meter_engine_state WHERE meter_id = ANY(%b::text[])",
        [meter_ids],
    )
    return dict(cur.fetchall())


def meter_specs(conn: Connection, meter_ids: list[str]) -> dict[str, MeterSpec]:
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT m.id, m.site_id, m.enterprise_id, m.kind, m.unit, m.reading, m.rollover, "
        "m.interval_s, m.max_gap_s, m.max_rate_per_h, m.factor_key, f.unit AS factor_unit, "
        "m.parent_id FROM meters m JOIN emission_factors f ON f.key = m.factor_key "
        "WHERE m.id = ANY(%b::text[])",
        [meter_ids],
    )
    return {row[0]: MeterSpec(*row) for row in cur.fetchall()}


def replacements(conn: Connection, meter_ids: list[str]) -> dict[str, list[Replacement]]:
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT meter_id, replaced_at, old_final_value, new_start_value FROM meter_replacements "
        "WHERE meter_id = ANY(%b::text[]) ORDER BY meter_id, replaced_at",
        [meter_ids],
    )
    out: dict[str, list[Replacement]] = defaultdict(list)
    for meter, at, old, new in cur.fetchall():
        out[meter].append(Replacement(at, old, new))
    return out


def accepted_ends(conn: Connection, meter_ids: list[str]) -> dict[str, frozenset[datetime]]:
    """Per meter, the ends of the intervals an admin accepted despite the
    plausibility guard (`emissions engine accept-interval`)."""
    cur = driver_cursor(conn)
    cur.execute(
        "SELECT meter_id, t1 FROM accepted_intervals WHERE meter_id = ANY(%b::text[])",
        [meter_ids],
    )
    out: dict[str, set[datetime]] = defaultdict(set)
    for meter, t1 in cur.fetchall():
        out[meter].add(t1)
    return {m: frozenset(ends) for m, ends in out.items()}


def factor_values(
    conn: Connection, factor_keys: list[str]
) -> dict[str, list[tuple[datetime, float, int]]]:
    """Every value of each factor, (valid_from, kgCO2e per unit, value id) in time order."""
    rows = conn.execute(
        text(
            "SELECT factor_key, valid_from, kgco2e_per_unit, id FROM emission_factor_values "
            "WHERE factor_key = ANY(CAST(:k AS text[])) ORDER BY factor_key, valid_from"
        ),
        {"k": factor_keys},
    )
    out: dict[str, list[tuple[datetime, float, int]]] = defaultdict(list)
    for r in rows:
        out[r.factor_key].append((r.valid_from, r.kgco2e_per_unit, r.id))
    return out


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
