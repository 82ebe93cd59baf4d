"""The one place ingest writes: a batch of parsed messages in one transaction.

Binary COPY into a session-local staging table, then `INSERT ... SELECT ... ON
CONFLICT (meter_id, ts) DO NOTHING`; rows that were not inserted are either
duplicates (same value: dropped) or conflicts (different value: recorded).
Quarantine rows and the engine's dirty-hour marks go in the same transaction, so
a batch is either wholly committed or not at all, and acks follow the commit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from core.dirty_marks import MARK_ARRAYS_PSYCOPG
from ingest import quarantine
from ingest.parse import Parsed, Position, Reading
from ingest.positions import Committed, Positions
from ingest.quarantine import QuarantineGate, QuarantinePolicy

STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    meter_id text NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL, topic text NOT NULL
) ON COMMIT DELETE ROWS
"""

COPY_READINGS = "COPY readings (meter_id, ts, value) FROM STDIN (FORMAT BINARY)"

INSERT_READINGS = """
WITH ins AS (
    INSERT INTO readings (meter_id, ts, value)
    SELECT meter_id, ts, value FROM ingest_stage
    ON CONFLICT (meter_id, ts) DO NOTHING
    RETURNING meter_id, ts
)
SELECT meter_id, ts FROM ins
"""

# Only run when some staged rows were not inserted; the ts bounds let TimescaleDB
# skip chunks the batch cannot touch.
RECORD_CONFLICTS = """
WITH c AS (
    SELECT s.meter_id, s.ts, r.value AS stored_value, s.value AS rejected_value, s.topic
    FROM ingest_stage s
    JOIN readings r ON r.meter_id = s.meter_id AND r.ts = s.ts
    WHERE r.value <> s.value AND r.ts BETWEEN %(lo)s AND %(hi)s
), ins AS (
    INSERT INTO reading_conflicts (meter_id, ts, stored_value, rejected_value, topic)
    SELECT meter_id, ts, stored_value, rejected_value, topic FROM c
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM c
"""


@dataclass(slots=True)
class Message:
    """A received message with its parse outcome; `ack` identifies it to the broker.
    Not frozen: one is made per message on the MQTT thread (ingest/parse.py, Reading)."""

    topic: str
    payload: bytes
    parsed: Parsed
    ack: object = None


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    # Of `quarantined`: rejections over the rate limit, counted in quarantine_drops only.
    dropped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0  # payloads stored cut at the cap
    committed: list[Committed] = field(default_factory=list)

    @property
    def readings(self) -> int:
        return self.stored + self.duplicates + self.conflicts


def _rounds(messages: Sequence[Message]) -> list[list[tuple[Reading, str]]]:
    """Split readings so no round holds one (meter, ts) twice with different values.

    Same-value repeats inside the batch are plain duplicates and are left out; a
    different value for a key already in the batch goes to a later round, where
    it meets the stored row and is recorded as a conflict.
    """
    rounds: list[list[tuple[Reading, str]]] = [[]]
    seen: dict[tuple[str, datetime], list[float]] = {}
    for message in messages:
        for reading in message.parsed.readings:
            values = seen.setdefault((reading.meter_id, reading.ts), [])
            if reading.value in values:
                continue
            if len(values) == len(rounds):
                rounds.append([])
            rounds[len(values)].append((reading, message.topic))
            values.append(reading.value)
    return rounds


class BatchWriter:
    """Owns one database connection; `write` is called by the single writer thread."""

    def __init__(self, conninfo: str, gate: QuarantineGate | None = None) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._gate = gate or QuarantineGate(QuarantinePolicy())
        self._pruned_at = float("-inf")
        self._positions = Positions()

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self._conninfo, application_name="park-emissions-ingest", connect_timeout=5
            )
            with self._conn.transaction():
                self._conn.execute(STAGE)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(self, messages: Sequence[Message]) -> BatchResult:
        return self.write_on(self._connection(), messages)

    def write_on(
        self, conn: psycopg.Connection[tuple[object, ...]], messages: Sequence[Message]
    ) -> BatchResult:
        """Write in `conn`'s transaction: its own on the writer's connection, a
        savepoint in a caller's open transaction (replay: ingest/replay.py, which
        creates the STAGE table on its connection first)."""
        # One pass over the messages: a drain hands over thousands of them per batch.
        readings: list[Reading] = []
        rejected: list[tuple[str, bytes, Parsed]] = []
        positions: list[tuple[str | None, Position | None]] = []
        for m in messages:
            parsed = m.parsed
            readings += parsed.readings
            if parsed.rejections:
                rejected.append((m.topic, m.payload, parsed))
            if parsed.position is not None:
                positions.append((parsed.site_id, parsed.position))
        result = BatchResult()
        with conn.transaction(), conn.cursor() as cur:
            if not self._copy_all_new(cur, readings, result):
                self._write_with_duplicates(cur, messages, result)
            self._quarantine(cur, rejected, result)
            result.committed = self._positions.record(cur, positions, datetime.now(UTC))
        self._positions.settle()
        return result

    def _copy_all_new(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        readings: list[Reading],
        result: BatchResult,
    ) -> bool:
        """Fast path: COPY straight into readings under a savepoint. False when some
        key repeats (in the batch or in the store: a redelivery, a duplicate); then
        the savepoint is rolled back and the batch takes the staging path."""
        if not readings:
            return True
        try:
            with cur.connection.transaction(), cur.copy(COPY_READINGS) as copy:
                copy.set_types(["text", "timestamptz", "float8"])
                for r in readings:
                    copy.write_row((r.meter_id, r.ts, r.value))
        except psycopg.errors.UniqueViolation:
            return False
        result.stored += len(readings)
        _mark_dirty(cur, [(r.meter_id, r.ts) for r in readings])
        return True

    def _write_with_duplicates(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        messages: Sequence[Message],
        result: BatchResult,
    ) -> None:
        total = sum(len(m.parsed.readings) for m in messages)
        staged = 0
        for rows in _rounds(messages):
            if rows:
                staged += len(rows)
                self._write_round(cur, rows, result)
        result.duplicates += total - staged

    def _write_round(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        rows: list[tuple[Reading, str]],
        result: BatchResult,
    ) -> None:
        cur.execute("TRUNCATE ingest_stage")
        with cur.copy(
            "COPY ingest_stage (meter_id, ts, value, topic) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "timestamptz", "float8", "text"])
            for reading, topic in rows:
                copy.write_row((reading.meter_id, reading.ts, reading.value, topic))
        new = cur.execute(INSERT_READINGS).fetchall()
        inserted = len(new)
        result.stored += inserted
        _mark_dirty(cur, [(str(m), t) for m, t in new])  # type: ignore[misc]
        if inserted == len(rows):
            return
        stamps = [r.ts for r, _ in rows]
        conflicts = _scalar(cur.execute(RECORD_CONFLICTS, {"lo": min(stamps), "hi": max(stamps)}))
        result.conflicts += conflicts
        result.duplicates += len(rows) - inserted - conflicts

    def _quarantine(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        rejected: Sequence[tuple[str, bytes, Parsed]],
        result: BatchResult,
    ) -> None:
        outcome = self._gate.rows(rejected)
        quarantine.write(cur, outcome)
        result.quarantined.update(outcome.quarantined)
        result.dropped.update(outcome.dropped_by_reason)
        result.truncated += outcome.truncated

    def prune_if_due(self, every_s: float = 3600.0) -> tuple[int, int] | None:
        """Apply the quarantine retention at most once per `every_s`; (rows, drop
        counts) deleted, or None when it was not due."""
        if time.monotonic() - self._pruned_at < every_s:
            return None
        self._pruned_at = time.monotonic()
        policy = self._gate.policy
        return quarantine.prune(self._connection(), datetime.now(UTC), policy.retention_days)


def _hour(ts: datetime) -> int:
    return int(ts.timestamp() // 3600)


def earliest_by_hour(keys: Sequence[tuple[str, datetime]]) -> dict[tuple[str, int], datetime]:
    """The earliest of `keys` in each (meter, UTC hour number)."""
    # Measured (bench.ingest, py-spy): hashing every reading's hour was a quarter
    # of the writer thread's time. A batch's readings of a meter mostly fall in one
    # hour, so the span of each meter is found first, and only the meters whose span
    # crosses an hour are looked at reading by reading.
    spans: dict[str, list[datetime]] = {}
    for meter, ts in keys:
        span = spans.get(meter)
        if span is None:
            spans[meter] = [ts, ts]
        elif ts < span[0]:
            span[0] = ts
        elif ts > span[1]:
            span[1] = ts
    earliest: dict[tuple[str, int], datetime] = {}
    crossing: set[str] = set()
    for meter, (lo, hi) in spans.items():
        if _hour(lo) == _hour(hi):
            earliest[(meter, _hour(lo))] = lo
        else:
            crossing.add(meter)
    if crossing:
        for meter, ts in keys:
            if meter in crossing:
                key = (meter, _hour(ts))
                first = earliest.get(key)
                if first is None or ts < first:
                    earliest[key] = ts
    return earliest


def _mark_dirty(
    cur: psycopg.Cursor[tuple[object, ...]], keys: Sequence[tuple[str, datetime]]
) -> None:
    """Mark each (meter, UTC hour) with its earliest new reading, which tells the
    engine whether the batch only appended to the meter or arrived late."""
    earliest = earliest_by_hour(keys)
    if earliest:
        marks = sorted(earliest.items())
        cur.execute(
            MARK_ARRAYS_PSYCOPG,
            (
                [m for (m, _), _ in marks],
                [datetime.fromtimestamp(h * 3600, UTC) for (_, h), _ in marks],
                [ts for _, ts in marks],
            ),
        )


def _scalar(cur: psycopg.Cursor[tuple[object, ...]]) -> int:
    row = cur.fetchone()
    assert row is not None
    value = row[0]
    assert isinstance(value, int)
    return value
