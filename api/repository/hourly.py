"""SQL of the hourly endpoint: rendered by PostgreSQL, joined by Python.

A site-year is 8,760 hours x ~6 kinds; building ~50,000 Python objects and then
JSON would cost several hundred milliseconds. Instead PostgreSQL renders each hour's
JSON object (or CSV lines) as text and Python only joins the rows. PostgreSQL's
float8 output is the shortest text that reads back to the same double, so the
numbers are exactly the stored ones.

Sources: a site reads `site_hourly`, an enterprise `enterprise_hourly` (both kept by
the engine without sub-meters), a meter `hourly_emissions`, converted to its kind's
canonical unit like the totals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from api.hourly_cache import Fingerprint, HourlyCache
from api.scope import Scope
from core.meter_kinds import CANONICAL_UNITS
from core.units import convert

_HOUR_TEXT = "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


def _source(scope: Scope) -> tuple[str, dict[str, object]]:
    """(FROM clause yielding hour, kind, consumption, unit, co2e_kg, est) and params."""
    if scope.meter is not None:
        canonical = CANONICAL_UNITS[scope.meter.kind]
        scale = convert(1.0, scope.meter.unit, canonical)
        # The same correctly rounded operation as core.units.convert.
        consumption = (
            f"consumption * {scale!r}"
            if scale >= 1
            else f"consumption / {convert(1.0, canonical, scope.meter.unit)!r}"
        )
        return (
            f"(SELECT hour, kind, {consumption} AS consumption, '{canonical}' AS unit, "  # noqa: S608
            "co2e_kg, estimated AS est FROM hourly_emissions "
            "WHERE meter_id = :id AND hour >= :a AND hour < :b) src",
            {"id": scope.meter.id},
        )
    if scope.enterprise_id is not None:
        return (
            "(SELECT hour, kind, consumption, unit, co2e_kg, estimated_meter_hours > 0 AS est "
            "FROM enterprise_hourly WHERE enterprise_id = :id AND hour >= :a AND hour < :b) src",
            {"id": scope.enterprise_id},
        )
    return (
        "(SELECT hour, kind, consumption, unit, co2e_kg, estimated_meter_hours > 0 AS est "
        "FROM site_hourly WHERE site_id = :id AND hour >= :a AND hour < :b) src",
        {"id": scope.site_id},
    )


def _header(scope: Scope) -> str:
    def q(value: str | None) -> str:
        # Ids are restricted to [A-Za-z0-9_.-] by the schema: nothing to escape.
        return "null" if value is None else f'"{value}"'

    meter = scope.meter.id if scope.meter else None
    return (
        f'{{"site":{q(scope.site_id)},"enterprise":{q(scope.enterprise_id)},'
        f'"meter":{q(meter)},"items":['
    )


_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
_DAY_OF = "date_bin('1 day', hour, CAST(:origin AS timestamptz))"
_ITEM = (
    'concat(\'{"hour":"\', ' + _HOUR_TEXT + ', \'","co2e_kg":\', sum(co2e_kg ORDER BY kind), '
    "',\"estimated\":', bool_or(est)::text, ',\"by_kind\":{', "
    "string_agg(concat('\"', kind, '\":{\"consumption\":', consumption, "
    "',\"unit\":\"', unit, '\",\"co2e_kg\":', co2e_kg, '}'), ',' ORDER BY kind), '}}')"
)


def _items(
    conn: Connection,
    scope: Scope,
    start: datetime,
    end: datetime,
    days: list[datetime] | None = None,
) -> list[tuple[datetime, str]]:
    """(UTC day, rendered hour) for the hours in [start, end) (of `days` only, if given)."""
    source, params = _source(scope)
    only = f"WHERE {_DAY_OF} = ANY(:days) " if days is not None else ""
    rows = conn.execute(
        text(
            f"SELECT {_DAY_OF}, {_ITEM} FROM {source} {only}"  # noqa: S608 - our SQL
            "GROUP BY hour ORDER BY hour"
        ),
        {**params, "a": start, "b": end, "origin": _ORIGIN, "days": days},
    )
    return [(day, item) for day, item in rows]


def _fingerprints(
    conn: Connection, scope: Scope, start: datetime, end: datetime
) -> dict[datetime, Fingerprint]:
    """Per UTC day: (enterprises with totals, sum of their day versions). The engine
    bumps a version whenever it rewrites that enterprise-day (engine/rollups.py)."""
    owner = "enterprise_id" if scope.enterprise_id is not None else "site_id"
    rows = conn.execute(
        text(
            "SELECT day, count(*), sum(version) FROM totals_versions "  # noqa: S608
            f"WHERE {owner} = :id AND day >= :a AND day < :b GROUP BY day"
        ),
        {"id": scope.enterprise_id or scope.site_id, "a": start, "b": end},
    )
    return {day: (int(n), int(v)) for day, n, v in rows}


def _day_floor(t: datetime) -> datetime:
    return _ORIGIN + ((t - _ORIGIN) // _DAY) * _DAY


def hourly_json(
    conn: Connection,
    scope: Scope,
    start: datetime,
    end: datetime,
    cache: HourlyCache | None = None,
) -> bytes:
    """The contract's JSON. Full UTC days of site and enterprise ranges come from
    `cache` when their fingerprint still matches (see api/hourly_cache.py)."""
    first = _day_floor(start)
    first = first if first == start else first + _DAY
    last = _day_floor(end)
    if cache is None or not cache.enabled or scope.meter is not None or last - first < _DAY:
        items = [item for _, item in _items(conn, scope, start, end)]
        return (_header(scope) + ",".join(items) + "]}").encode()
    parts = [item for _, item in _items(conn, scope, start, first)] if start < first else []
    owner = ("e", scope.enterprise_id) if scope.enterprise_id else ("s", scope.site_id)
    prints = _fingerprints(conn, scope, first, last)
    days = [first + i * _DAY for i in range((last - first) // _DAY)]
    chunks = {d: cache.get((*owner, d), prints.get(d, (0, 0))) for d in days}
    stale = [d for d, chunk in chunks.items() if chunk is None]
    if stale:
        fresh: dict[datetime, list[str]] = {d: [] for d in stale}
        for day, item in _items(conn, scope, first, last, stale):
            fresh[day].append(item)
        for day, items in fresh.items():
            chunks[day] = ",".join(items)
            cache.put((*owner, day), prints.get(day, (0, 0)), chunks[day] or "")
    parts.extend(c for c in (chunks[d] for d in days) if c)
    if last < end:
        parts.extend(item for _, item in _items(conn, scope, last, end))
    return (_header(scope) + ",".join(parts) + "]}").encode()


CSV_HEADER = "hour,co2e_kg,estimated,kind,consumption,unit,kind_co2e_kg\r\n"


def hourly_csv(conn: Connection, scope: Scope, start: datetime, end: datetime) -> bytes:
    """One line per (hour, kind); the hour's total and `estimated` repeat on each."""
    source, params = _source(scope)
    rows = conn.execute(
        text(
            f"SELECT {_HOUR_TEXT} || ',' || sum(co2e_kg ORDER BY kind) || ',' "  # noqa: S608
            "|| bool_or(est)::text || ',', "
            "array_agg(concat(kind, ',', consumption, ',', unit, ',', co2e_kg) ORDER BY kind) "
            f"FROM {source} GROUP BY hour ORDER BY hour"
        ),
        {**params, "a": start, "b": end},
    )
    lines = [CSV_HEADER]
    for prefix, parts in rows:
        lines.extend(f"{prefix}{part}\r\n" for part in parts)
    return "".join(lines).encode()
