"""The MRV inventory: per local month, scope and kind, what was consumed and emitted,
with the factor values and sources behind it and how complete the data is.

completeness = measured meter-hours / expected meter-hours, where measured excludes
hours marked estimated (data gaps) and expected counts every hour of the month up
to now during which each counted meter was commissioned. estimated_share =
estimated meter-hours / meter-hours with data.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from api.repository import inventory as repo
from api.schemas import FactorUsed, InventoryLine, InventoryOut
from api.scope import Scope
from core.emissions.hours import HOUR


def _month_bounds(year: int, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    starts = [datetime(year, m, 1, tzinfo=tz) for m in range(1, 13)]
    ends = [*starts[1:], datetime(year + 1, 1, 1, tzinfo=tz)]
    return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in zip(starts, ends, strict=True)]


def _expected_hours(spans: list[repo.MeterSpan], kind: str, a: datetime, b: datetime) -> int:
    total = 0
    for span in spans:
        if span.kind != kind:
            continue
        lo = max(a, span.commissioned_at)
        if b > lo:
            total += math.ceil((b - lo) / HOUR)
    return total


def build_inventory(conn: Connection, scope: Scope, year: int, now: datetime) -> InventoryOut:
    tz = ZoneInfo(scope.timezone)
    months = _month_bounds(year, tz)
    start, end = months[0][0], months[-1][1]
    spans = repo.meters_in_totals(conn, scope)
    factors = repo.factor_values(conn, scope, start, end)
    by_month = {a: (a, b) for a, b in months}
    lines: list[InventoryLine] = []
    by_scope = {"1": 0.0, "2": 0.0, "3": 0.0}
    total = avoided = 0.0
    for row in repo.monthly_kinds(conn, scope, start, end):
        a, b = by_month[row["month"]]
        expected = _expected_hours(spans, row["kind"], a, min(b, now))
        measured = row["meter_hours"] - row["estimated_meter_hours"]
        used = [
            FactorUsed(
                key=f["key"],
                valid_from=f["valid_from"],
                kgco2e_per_unit=f["kgco2e_per_unit"],
                unit=f["unit"],
                source=f["source"],
            )
            for f in factors
            if f["kind"] == row["kind"]
            and f["valid_from"] < b
            and (f["valid_to"] is None or f["valid_to"] > a)
        ]
        lines.append(
            InventoryLine(
                month=row["month"].astimezone(tz).strftime("%Y-%m"),
                scope=row["scope"],
                kind=row["kind"],
                consumption=row["consumption"],
                unit=row["unit"],
                co2e_kg=row["co2e_kg"],
                avoided_co2e_kg=row["avoided_co2e_kg"],
                meter_hours=row["meter_hours"],
                expected_meter_hours=expected,
                completeness=min(measured / expected, 1.0) if expected else None,
                estimated_share=(
                    row["estimated_meter_hours"] / row["meter_hours"]
                    if row["meter_hours"]
                    else None
                ),
                factors=used,
            )
        )
        if row["scope"] == 0:  # production output: listed, in no scope (docs/reports.md)
            continue
        by_scope[str(row["scope"])] += row["co2e_kg"]
        total += row["co2e_kg"]
        avoided += row["avoided_co2e_kg"]
    return InventoryOut(
        site=scope.site_id,
        enterprise=scope.enterprise_id,
        year=year,
        timezone=scope.timezone,
        total_co2e_kg=total,
        total_avoided_co2e_kg=avoided,
        by_scope=by_scope,
        lines=lines,
    )


CSV_COLUMNS = (
    "month",
    "scope",
    "kind",
    "consumption",
    "unit",
    "co2e_kg",
    "avoided_co2e_kg",
    "meter_hours",
    "expected_meter_hours",
    "completeness",
    "estimated_share",
    "factors",
)


def inventory_csv(inventory: InventoryOut) -> str:
    """One line per (month, scope, kind); factors as `key@valid_from=value unit/unit (source)`
    joined by ` | `."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for line in inventory.lines:
        factors = " | ".join(
            f"{f.key}@{f.valid_from.astimezone(UTC).isoformat().replace('+00:00', 'Z')}="
            f"{f.kgco2e_per_unit!r} kgCO2e/{f.unit} ({f.source})"
            for f in line.factors
        )
        writer.writerow(
            [
                line.month,
                line.scope,
                line.kind,
                repr(line.consumption),
                line.unit,
                repr(line.co2e_kg),
                repr(line.avoided_co2e_kg),
                line.meter_hours,
                line.expected_meter_hours,
                "" if line.completeness is None else repr(line.completeness),
                "" if line.estimated_share is None else repr(line.estimated_share),
                factors,
            ]
        )
    return buffer.getvalue()
