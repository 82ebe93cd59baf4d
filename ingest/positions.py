"""Each numbered gateway's committed position (SPEC section 3, end-to-end delivery).

A position is the highest `seq` up to which every message of the gateway's epoch
was committed or quarantined. It moves only over an unbroken run: a message past
a gap (one the broker lost in a crash, say) is remembered in memory as `ahead`
until the gap is filled, which a conforming gateway does when it republishes
after reconnecting. Losing `ahead` (an ingest restart) only delays the position
until that republish; it can never cover a message that was not committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from core import topics
from ingest.parse import Position

# Past a gap, at most this many later seqs are remembered per gateway and epoch:
# a gateway that never fills its gap must not grow ingest's memory without bound.
MAX_AHEAD = 100_000

SELECT = """
SELECT gateway_id, epoch, seq FROM gateway_positions
WHERE site_id = %s AND (gateway_id, epoch) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
FOR UPDATE
"""

UPSERT = """
INSERT INTO gateway_positions (site_id, gateway_id, epoch, seq, committed_at)
SELECT %s, g, e, s, %s FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS t(g, e, s)
ON CONFLICT (site_id, gateway_id, epoch) DO UPDATE
SET seq = GREATEST(gateway_positions.seq, excluded.seq), committed_at = excluded.committed_at
"""

Key = tuple[str, str, str]  # site, gateway, epoch


@dataclass(frozen=True, slots=True)
class Committed:
    site: str
    gateway: str
    epoch: str
    seq: int
    at: datetime


def committed_message(prefix: str, c: Committed) -> tuple[str, bytes]:
    """The retained topic and payload that tell a gateway what it may forget."""
    at = c.at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = json.dumps({"epoch": c.epoch, "seq": c.seq, "at": at}, separators=(",", ":"))
    return topics.committed(prefix, c.site, c.gateway), payload.encode()


def advance(seq: int, ahead: frozenset[int], arrived: Iterable[int]) -> tuple[int, frozenset[int]]:
    """The new unbroken position and what still waits past a gap."""
    waiting = set(ahead)
    waiting.update(s for s in arrived if s > seq)
    while seq + 1 in waiting:
        seq += 1
        waiting.remove(seq)
    if len(waiting) > MAX_AHEAD:
        waiting = set(sorted(waiting)[:MAX_AHEAD])
    return seq, frozenset(waiting)


def arrivals(positions: Iterable[tuple[str | None, Position | None]]) -> dict[Key, list[int]]:
    out: dict[Key, list[int]] = {}
    for site, position in positions:
        if site is not None and position is not None:
            out.setdefault((site, position.gateway, position.epoch), []).append(position.seq)
    return out


class Positions:
    """Reads and moves positions inside the writer's transaction; `ahead` is applied
    only once that transaction committed (`settle`)."""

    def __init__(self) -> None:
        self._ahead: dict[Key, frozenset[int]] = {}
        self._planned: dict[Key, frozenset[int]] = {}

    def record(
        self,
        cur: psycopg.Cursor[tuple[object, ...]],
        positions: Sequence[tuple[str | None, Position | None]],
        now: datetime,
    ) -> list[Committed]:
        by_key = arrivals(positions)
        self._planned = {}
        moved: list[Committed] = []
        for site in sorted({k[0] for k in by_key}):
            keys = sorted(k for k in by_key if k[0] == site)
            current = {
                (str(g), str(e)): int(s)  # type: ignore[call-overload]
                for g, e, s in cur.execute(
                    SELECT, (site, [k[1] for k in keys], [k[2] for k in keys])
                ).fetchall()
            }
            for key in keys:
                old = current.get((key[1], key[2]), 0)
                seq, waiting = advance(old, self._ahead.get(key, frozenset()), by_key[key])
                self._planned[key] = waiting
                if seq > old:
                    moved.append(Committed(site, key[1], key[2], seq, now))
            mine = [c for c in moved if c.site == site]
            if mine:
                cur.execute(
                    UPSERT,
                    (
                        site,
                        now,
                        [c.gateway for c in mine],
                        [c.epoch for c in mine],
                        [c.seq for c in mine],
                    ),
                )
        return moved

    def settle(self) -> None:
        """The transaction committed: what waits past a gap is now known."""
        for key, waiting in self._planned.items():
            if waiting:
                self._ahead[key] = waiting
            else:
                self._ahead.pop(key, None)
        self._planned = {}
