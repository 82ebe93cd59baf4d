"""Replay of quarantined messages through the normal ingest path (parse + writer).

After the cause is fixed (a meter registered, a unit corrected), an admin picks
quarantine rows by id; each message they belong to is parsed again against the
meters registered now and written by `BatchWriter.write_on`, so it gets exactly
the checks and the exactly-once storage of live ingest. A message is replayed
whole, once: every open row of it (same topic and payload digest) is marked
replayed, not deleted, for the audit trail, in the same transaction as the write.
Each reading then ends stored (or a duplicate of a stored one, or a conflict)
or quarantined again in a fresh row, never both. Rows whose payload was cut at
the cap cannot be replayed and stay open.

`replay_quarantined` runs in the caller's transaction (the API's request, the
CLI's `transaction`, the console's): it never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import psycopg
from sqlalchemy import Connection, text

from core.settings import Settings
from ingest.adapters.base import DeviceRoute
from ingest.devices import parse_any
from ingest.meters import load_meters, load_routes
from ingest.parse import Limits, MeterInfo
from ingest.quarantine import QuarantineGate, QuarantinePolicy
from ingest.writer import STAGE, BatchWriter, Message

MAX_IDS = 1000

_CHOSEN = text(
    "SELECT id, topic, payload_sha256, replayed_at IS NOT NULL AS replayed FROM quarantine "
    "WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
)
_MESSAGE = text(
    "SELECT id, payload, payload_bytes IS NULL OR payload_bytes = length(payload) AS whole "
    "FROM quarantine WHERE topic = :t AND payload_sha256 = :h AND replayed_at IS NULL "
    "ORDER BY id FOR UPDATE"
)
_MARK = text(
    "UPDATE quarantine SET replayed_at = :now, replay_result = :result WHERE id = ANY(:ids)"
)


class Outcome(StrEnum):
    replayed = "replayed"
    not_found = "not_found"
    already_replayed = "already_replayed"
    payload_cut = "payload_cut"


@dataclass
class Replayed:
    """One chosen row and what became of its message."""

    id: int
    outcome: Outcome
    rows: list[int] = field(default_factory=list)  # every row of the message marked
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        again = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items())) or "none"
        return (
            f"stored {self.stored}, duplicates {self.duplicates}, conflicts {self.conflicts}, "
            f"quarantined again: {again}"
        )


def replay_quarantined(
    conn: Connection,
    ids: Sequence[int],
    settings: Settings,
    now: datetime | None = None,
) -> list[Replayed]:
    """Replay the messages of the chosen quarantine rows; one result per id, in order."""
    now = now or datetime.now(UTC)
    meters = load_meters(conn, [])
    routes = load_routes(conn, [])
    pg = conn.connection.driver_connection
    assert isinstance(pg, psycopg.Connection)
    pg.execute(STAGE)
    # No rate limit: an admin asked for these rows; the payload cap still applies.
    writer = BatchWriter("", QuarantineGate(QuarantinePolicy.from_settings(settings), False))
    limits = Limits(
        settings.ingest_max_payload_bytes, timedelta(seconds=settings.ingest_max_future_skew_s)
    )
    results: dict[int, Replayed] = {}
    done: dict[tuple[str, bytes], Replayed] = {}
    for row in conn.execute(_CHOSEN, {"ids": list(ids)}).all():
        key = (str(row.topic), bytes(row.payload_sha256))
        if key in done:
            results[row.id] = replace(done[key], id=row.id)  # a sibling of a replayed row
        elif row.replayed:
            results[row.id] = Replayed(row.id, Outcome.already_replayed)
        else:
            results[row.id] = done[key] = _replay_message(
                conn,
                pg,
                writer,
                row.id,
                key,
                (meters, routes),
                settings.mqtt_topic_prefix,
                limits,
                now,
            )
    return [results.get(i) or Replayed(i, Outcome.not_found) for i in ids]


def _replay_message(
    conn: Connection,
    pg: psycopg.Connection[tuple[object, ...]],
    writer: BatchWriter,
    row_id: int,
    key: tuple[str, bytes],
    registry: tuple[dict[str, MeterInfo], Mapping[str, Sequence[DeviceRoute]]],
    prefix: str,
    limits: Limits,
    now: datetime,
) -> Replayed:
    topic, digest = key
    rows = conn.execute(_MESSAGE, {"t": topic, "h": digest}).all()
    whole = next((bytes(r.payload) for r in rows if r.whole), None)
    if whole is None:
        return Replayed(row_id, Outcome.payload_cut)
    row_ids = [int(r.id) for r in rows]
    # Marked first: the de-duplication index covers open rows only, so a reading
    # that is still bad is quarantined again in a fresh row.
    conn.execute(_MARK, {"now": now, "result": "replaying", "ids": row_ids})
    meters, routes = registry
    parsed = parse_any(topic, whole, prefix, meters, routes, now, limits)
    written = writer.write_on(pg, [Message(topic, whole, parsed)])
    result = Replayed(
        row_id,
        Outcome.replayed,
        row_ids,
        written.stored,
        written.duplicates,
        written.conflicts,
        dict(written.quarantined),
    )
    conn.execute(_MARK, {"now": now, "result": result.summary, "ids": row_ids})
    return result
