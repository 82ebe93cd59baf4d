"""What a quarantine row holds, and the bounds that keep the table from filling the disk.

- **Cap.** A payload is kept up to `max_payload_bytes`; a longer one is cut there,
  with its full size (`payload_bytes`) and the SHA-256 of the whole kept beside it.
  A message's payload is stored once, on its first rejection; its other rejections
  carry the digest and size only (the rows of a 10,000-reading batch share one copy).
- **Rate.** Each publishing source (the topic: a gateway's batch topic is the
  gateway, a meter's own topic is that meter) may add `burst` rows at once, then
  `per_minute` a minute (core/rate.py, per ingest process). Rows over it are not
  stored but counted, per source, reason and hour, in `quarantine_drops`, in the
  same transaction: an auditor sees how many were dropped and why.
- **Retention.** Rows (and drop counts) older than `retention_days` are deleted
  by the ingest writer thread once an hour and by `emissions quarantine prune`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from core.rate import TokenBuckets
from core.settings import Settings
from ingest.parse import Parsed

INSERT_QUARANTINE = """
INSERT INTO quarantine
    (topic, site_id, meter_id, reason, detail, payload, payload_sha256, payload_bytes)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (topic, payload_sha256, reason, detail) WHERE replayed_at IS NULL DO NOTHING
"""

COUNT_DROPS = """
INSERT INTO quarantine_drops (source, site_id, reason, hour, dropped)
VALUES (%s, %s, %s, date_trunc('hour', now()), %s)
ON CONFLICT (source, reason, hour)
DO UPDATE SET dropped = quarantine_drops.dropped + EXCLUDED.dropped, last_at = now()
"""

PRUNE = """
WITH q AS (DELETE FROM quarantine WHERE received_at < %(before)s RETURNING 1),
     d AS (DELETE FROM quarantine_drops WHERE hour < %(before)s RETURNING 1)
SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM d)
"""

QuarantineRow = tuple[str, str | None, str | None, str, str, bytes, bytes, int | None]


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    max_payload_bytes: int = 64 * 1024
    burst: int = 1000
    per_minute: float = 600.0
    retention_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> QuarantinePolicy:
        return cls(
            settings.ingest_quarantine_max_payload_bytes,
            settings.ingest_quarantine_burst,
            settings.ingest_quarantine_per_minute,
            settings.ingest_quarantine_retention_days,
        )


@dataclass
class QuarantineOutcome:
    """What one batch's rejections became: rows to store, every rejection by reason
    (stored or dropped), the dropped ones by source, site and reason, cut payloads."""

    rows: list[QuarantineRow] = field(default_factory=list)
    quarantined: Counter[str] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str | None, str]] = field(default_factory=Counter)
    truncated: int = 0

    @property
    def dropped_by_reason(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, _, reason), n in self.dropped.items():
            out[reason] += n
        return out


class QuarantineGate:
    """Turns rejections into rows within the policy; `rate_limited=False` for replay,
    which an admin asked for by id."""

    def __init__(self, policy: QuarantinePolicy, rate_limited: bool = True) -> None:
        self.policy = policy
        self._buckets = (
            TokenBuckets(policy.burst, policy.per_minute, max_keys=10_000) if rate_limited else None
        )

    def rows(self, messages: Sequence[tuple[str, bytes, Parsed]]) -> QuarantineOutcome:
        out = QuarantineOutcome()
        for topic, payload, parsed in messages:
            rejections = parsed.rejections
            if not rejections:
                continue
            kept = len(rejections)
            if self._buckets is not None:
                kept = self._buckets.take(topic, len(rejections))
            for rej in rejections:
                out.quarantined[rej.reason.value] += 1
            for rej in rejections[kept:]:
                out.dropped[(topic, parsed.site_id, rej.reason.value)] += 1
            if not kept:
                continue
            digest = hashlib.sha256(payload).digest()
            stored, full_size = cut(payload, self.policy.max_payload_bytes)
            out.truncated += full_size is not None
            for index, rej in enumerate(rejections[:kept]):
                out.rows.append(
                    (
                        topic,
                        parsed.site_id,
                        rej.meter_id,
                        rej.reason.value,
                        rej.detail,
                        stored if index == 0 else b"",
                        digest,
                        full_size if index == 0 else len(payload) or None,
                    )
                )
        return out


def cut(payload: bytes, cap: int) -> tuple[bytes, int | None]:
    """The payload as stored and its full size when it was cut (None: kept whole)."""
    if len(payload) <= cap:
        return payload, None
    return payload[:cap], len(payload)


def write(cur: psycopg.Cursor[tuple[object, ...]], outcome: QuarantineOutcome) -> None:
    """The rows and the drop counts, in the caller's transaction."""
    if outcome.rows:
        cur.executemany(INSERT_QUARANTINE, outcome.rows)
    if outcome.dropped:
        cur.executemany(
            COUNT_DROPS,
            [(src, site, reason, n) for (src, site, reason), n in sorted(outcome.dropped.items())],
        )


def prune(
    conn: psycopg.Connection[tuple[object, ...]], now: datetime, retention_days: int
) -> tuple[int, int]:
    """Delete quarantine rows and drop counts older than the retention period;
    returns (rows, drop counts) deleted."""
    with conn.transaction():
        row = conn.execute(PRUNE, {"before": now - timedelta(days=retention_days)}).fetchone()
    assert row is not None
    return int(str(row[0])), int(str(row[1]))
