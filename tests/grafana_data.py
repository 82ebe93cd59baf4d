"""A few days of the simulated park in a real store, for the dashboard tests.

The simulator's pure generator gives every meter's readings; faults operators
look for are laid on top (a glitch, a reset, a gap, a meter gone silent, a
conflict, quarantined messages, open alerts). Readings go through the ingest
writer (the real write path: dirty marks, conflicts, quarantine) and are priced
by the real engine, so hourly emissions and the site and enterprise totals are
what production would hold.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from core import topics
from core.park.models import Park
from engine.service import refresh_until_clean
from ingest.parse import Parsed, Reading, Reason, Rejection
from ingest.writer import BatchWriter, Message
from simulator.generate import readings as simulated

INTERVAL_S = 900
GLITCH_METER = "NCK-PARK-E-01"
RESET_METER = "NCK-STL1-W-01"
CONFLICT_METER = "NCK-GAR1-E-01"
SILENT_METER = "NCK-STL2-W-01"
SILENT_SINCE = timedelta(hours=6)
GAP_METER = "NCK-GAR2-W-01"  # three hours without readings: estimated hours


def with_faults(meter: str, readings: list[Reading], end: datetime) -> list[Reading]:
    """One meter's readings with the fault planned for it, if any."""
    if meter == SILENT_METER:
        readings = [r for r in readings if r.ts <= end - SILENT_SINCE]
    if meter == GAP_METER:
        gap_from, gap_to = end - timedelta(hours=20), end - timedelta(hours=17)
        readings = [r for r in readings if not gap_from < r.ts < gap_to]
    if meter == GLITCH_METER:  # the meter briefly reports 0
        mid = len(readings) // 2
        readings[mid] = Reading(meter, readings[mid].ts, 0.0)
    if meter == RESET_METER:  # the register restarts from 0 a day ago
        cut = len(readings) * 2 // 3
        offset = readings[cut].value - 1.0
        readings[cut:] = [Reading(meter, r.ts, round(r.value - offset, 3)) for r in readings[cut:]]
    return readings


def load_park_data(engine: Engine, libpq_url: str, park: Park, now: datetime, days: int) -> None:
    """Store `days` of simulated readings up to `now` for every meter, with the
    faults above, and run the engine until every dirty hour is priced."""
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    by_meter: dict[str, list[Reading]] = defaultdict(list)
    for r in simulated(park, start, now, seed=7, interval_s=INTERVAL_S):
        by_meter[r.meter_id].append(Reading(r.meter_id, r.ts, r.value))
    with closing(BatchWriter(libpq_url)) as writer:
        for site, _enterprise, meter in park.meters():
            readings = with_faults(meter.id, by_meter[meter.id], now)
            assert readings, f"the simulator gave {meter.id} no readings"
            topic = topics.reading("parks", site.id, meter.id)
            writer.write([Message(topic, b"", Parsed(site.id, readings))])
            if meter.id == CONFLICT_METER:  # the same (meter, ts) again, another value
                stored = readings[-10]
                again = Reading(meter.id, stored.ts, stored.value + 5.0)
                writer.write([Message(topic, b'{"value": 1}', Parsed(site.id, [again]))])
        _quarantine(writer, park.sites[0].id)
    refresh_until_clean(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO alerts (rule, subject, site_id, state, summary, value, threshold, "
                "started_at) VALUES ('silent_meter', :m, :s, 'firing', :summary, 6, 1, :t), "
                "('drift_day', :s, :s, 'acknowledged', 'today over budget', 1.2, 1.1, :t)"
            ),
            {
                "m": SILENT_METER,
                "s": park.sites[0].id,
                "summary": f"{SILENT_METER} silent",
                "t": now,
            },
        )


def _quarantine(writer: BatchWriter, site: str) -> None:
    bad = [
        (b"not json", Rejection(Reason.not_json, "Expecting value")),
        (b'{"value": -3}', Rejection(Reason.negative_value, "value -3", GLITCH_METER)),
        (b'{"value": 1, "unit": "L"}', Rejection(Reason.unit_mismatch, "L", GLITCH_METER)),
        (b'{"value": 2}', Rejection(Reason.unknown_meter, "NOPE", "NOPE")),
    ]
    writer.write(
        [
            Message(
                topics.reading("parks", site, f"x{n}"),
                payload,
                Parsed(site, rejections=[rejection]),
            )
            for n, (payload, rejection) in enumerate(bad)
        ]
    )
