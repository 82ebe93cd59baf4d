"""Writes of a batch of meters: collected while computing, then a few bulk statements.

A meter's refresh may replace several hour ranges and event ranges (one per run
of dirty hours). Collecting them applies each replacement to what was collected
before for that meter, exactly as a delete-then-insert would, so the batch
writes the same rows as the meters one at a time; `flush` then deletes every
range in one statement, inserts every row in one more (unnest arrays), and
returns the (site, enterprise, hour) totals the rows touch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from core.emissions.counters import QualityEvent
from engine.repository import HourRow, MeterSpec, driver_cursor
from engine.rollups import TotalsKey

_DELETE_HOURS = (
    "DELETE FROM hourly_emissions h USING unnest(%b::text[], %b::timestamptz[], "
    "%b::timestamptz[]) AS d(m, h0, h1) WHERE h.meter_id = d.m AND h.hour >= d.h0 "
    "AND h.hour < d.h1 RETURNING h.meter_id, h.hour"
)
# The meter's site, enterprise, kind and unit come from `meters` in the statement:
# sending them as four more text arrays cost more to encode than the join does.
_INSERT_HOURS = (
    "INSERT INTO hourly_emissions (meter_id, hour, site_id, enterprise_id, kind, scope, "
    "consumption, unit, co2e_kg, avoided_co2e_kg, estimated, factor_value_id) "
    "SELECT d.m, d.h, mt.site_id, mt.enterprise_id, mt.kind, d.scope, d.c, mt.unit, d.kg, "
    "d.avoided, d.est, d.fv FROM unnest(%b::text[], %b::timestamptz[], %b::smallint[], "
    "%b::float8[], %b::float8[], %b::float8[], %b::boolean[], %b::bigint[]) "
    "AS d(m, h, scope, c, kg, avoided, est, fv) JOIN meters mt ON mt.id = d.m"
)
# An event found again is left in place, so it keeps its `detected_at`: alert rules
# count data-quality events by when they were first detected, not by reading time.
_DELETE_EVENTS = (
    "DELETE FROM data_quality_events e USING unnest(%b::text[], %b::timestamptz[], "
    "%b::timestamptz[]) AS d(m, t0, t1) WHERE e.meter_id = d.m AND e.ts > d.t0 "
    "AND e.ts <= d.t1 AND e.kind <> 'replacement' AND NOT EXISTS (SELECT 1 FROM "
    "unnest(%b::text[], %b::timestamptz[], %b::text[]) AS k(m, ts, kind) "
    "WHERE k.m = e.meter_id AND k.ts = e.ts AND k.kind = e.kind)"
)
_INSERT_EVENTS = (
    "INSERT INTO data_quality_events (meter_id, ts, kind, detail) SELECT m, ts, k, "
    "CAST(d AS jsonb) FROM unnest(%b::text[], %b::timestamptz[], %b::text[], %b::text[]) "
    "AS e(m, ts, k, d) ON CONFLICT (meter_id, ts, kind) DO UPDATE SET detail = EXCLUDED.detail"
)
_SET_WATERMARKS = (
    "INSERT INTO meter_engine_state (meter_id, computed_until) SELECT * FROM "
    "unnest(%b::text[], %b::timestamptz[]) ON CONFLICT (meter_id) "
    "DO UPDATE SET computed_until = EXCLUDED.computed_until"
)


@dataclass
class BatchWrites:
    """Hour rows, data-quality events and watermarks of a batch, not yet written."""

    meters: dict[str, MeterSpec] = field(default_factory=dict)
    hour_ranges: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    hours: dict[str, dict[datetime, HourRow]] = field(default_factory=lambda: defaultdict(dict))
    event_ranges: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    events: dict[str, dict[tuple[datetime, str], QualityEvent]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    watermarks: dict[str, datetime | None] = field(default_factory=dict)

    def replace_hours(
        self, meter: MeterSpec, h0: datetime, h1: datetime, rows: Sequence[HourRow]
    ) -> None:
        """The meter's hours in [h0, h1) become exactly `rows`."""
        self.meters[meter.id] = meter
        self.hour_ranges.append((meter.id, h0, h1))
        kept = self.hours[meter.id]
        for hour in [h for h in kept if h0 <= h < h1]:
            del kept[hour]
        kept.update((r.hour, r) for r in rows)

    def replace_events(
        self, meter_id: str, t0: datetime, t1: datetime, events: Sequence[QualityEvent]
    ) -> None:
        """The meter's events with t0 < ts <= t1 become exactly `events` (replacement
        events are recorded with the replacement and never rewritten)."""
        self.event_ranges.append((meter_id, t0, t1))
        kept = self.events[meter_id]
        for key in [k for k in kept if t0 < k[0] <= t1]:
            del kept[key]
        kept.update(
            ((e.ts, e.kind), e) for e in events if t0 < e.ts <= t1 and e.kind != "replacement"
        )

    def set_computed_until(self, meter_id: str, ts: datetime | None) -> None:
        self.watermarks[meter_id] = ts

    def flush(self, conn: Connection) -> list[TotalsKey]:
        """Write everything; the totals keys of every hour that had or now has a row
        of a meter that is no sub-meter."""
        cur = driver_cursor(conn)
        touched: set[tuple[str, datetime]] = set()
        if self.hour_ranges:
            cur.execute(_DELETE_HOURS, [list(c) for c in zip(*self.hour_ranges, strict=True)])
            touched.update((m, h) for m, h in cur.fetchall())
        rows = [(self.meters[m], r) for m, kept in self.hours.items() for r in kept.values()]
        if rows:
            touched.update((m.id, r.hour) for m, r in rows)
            columns = zip(
                *(
                    (
                        m.id, r.hour, r.scope, r.consumption, r.co2e_kg, r.avoided_co2e_kg,
                        r.estimated, r.factor_value_id,
                    )
                    for m, r in rows
                ),
                strict=True,
            )  # fmt: skip
            cur.execute(_INSERT_HOURS, [list(c) for c in columns])
        events = [(m, e) for m, kept in self.events.items() for e in kept.values()]
        if self.event_ranges:
            found = [[m for m, _ in events], [e.ts for _, e in events], [e.kind for _, e in events]]
            ranges = [list(c) for c in zip(*self.event_ranges, strict=True)]
            cur.execute(_DELETE_EVENTS, [*ranges, *found])
        if events:
            cur.execute(
                _INSERT_EVENTS,
                [
                    [m for m, _ in events],
                    [e.ts for _, e in events],
                    [e.kind for _, e in events],
                    [json.dumps(e.detail) for _, e in events],
                ],
            )
        self._write_watermarks(cur)
        return sorted(
            (spec.site_id, spec.enterprise_id, hour)
            for spec, hour in ((self.meters[m], h) for m, h in touched)
            if spec.parent_id is None
        )

    def _write_watermarks(self, cur: object) -> None:
        setting = [(m, t) for m, t in sorted(self.watermarks.items()) if t is not None]
        clearing = [m for m, t in self.watermarks.items() if t is None]
        if setting:
            cur.execute(  # type: ignore[attr-defined]
                _SET_WATERMARKS, [[m for m, _ in setting], [t for _, t in setting]]
            )
        if clearing:
            cur.execute(  # type: ignore[attr-defined]
                "DELETE FROM meter_engine_state WHERE meter_id = ANY(%b::text[])", [clearing]
            )
