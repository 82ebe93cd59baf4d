"""The gateways' store-and-forward buffer (SPEC section 3, end-to-end delivery).

A gateway numbers its batches (`seq`, from 1 within an `epoch`) and keeps each one
on disk until the service's retained `committed` position covers it; after every
reconnect it republishes the rest. Storage is idempotent, so a republished
reading costs a duplicate count and nothing else. One SQLite file per simulator
process (the stdlib's sqlite3). The counter is written in the same transaction
as the payload it numbers, so a seq is never reused within an epoch. WAL with
synchronous=NORMAL survives a killed process; a power cut may lose the last
transactions (counter and payloads together), which a real gateway avoids with
synchronous=FULL.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    gateway TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_seq INTEGER NOT NULL, topic TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    gateway TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (gateway, seq)
);
"""


def stamp(payload: bytes, epoch: str, seq: int) -> bytes:
    """A batch's JSON object with `epoch` and `seq` as its first keys; the rest of
    the payload is left byte for byte as the gateway built it."""
    if not payload.startswith(b"{") or payload[1:].lstrip().startswith(b"}"):
        raise ValueError("only a non-empty JSON object can carry seq and epoch")
    head = json.dumps({"epoch": epoch, "seq": seq}, separators=(",", ":")).encode()
    return head[:-1] + b"," + payload[1:]


class Buffer:
    """Used by one thread only (the publisher's loop)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.execute("BEGIN")
        self._state: dict[str, tuple[str, int]] = {
            g: (e, s)
            for g, e, s in self._db.execute("SELECT gateway, epoch, last_seq FROM gateways")
        }

    def epoch(self, gateway: str) -> str:
        return self._position(gateway)[0]

    def last_seq(self, gateway: str) -> int:
        return self._position(gateway)[1]

    def _position(self, gateway: str) -> tuple[str, int]:
        known = self._state.get(gateway)
        if known is None:
            # A new counter gets a new epoch: the service never confuses its seqs
            # with those of an earlier buffer file of the same gateway.
            known = (uuid.uuid4().hex[:16], 0)
            self._db.execute(
                "INSERT INTO gateways (gateway, epoch, last_seq) VALUES (?, ?, 0)",
                (gateway, known[0]),
            )
            self._state[gateway] = known
        return known

    def add(self, gateway: str, topic: str, payload: bytes) -> tuple[int, bytes]:
        """Number, stamp and keep one batch; durable at the next `commit`. Returns its
        seq and the stamped payload, which is what goes on the wire."""
        epoch, seq = self._position(gateway)
        seq += 1
        stamped = stamp(payload, epoch, seq)
        self._db.execute(
            "INSERT INTO outbox (gateway, seq, topic, payload) VALUES (?, ?, ?, ?)",
            (gateway, seq, topic, stamped),
        )
        self._db.execute(
            "UPDATE gateways SET last_seq = ?, topic = ? WHERE gateway = ?", (seq, topic, gateway)
        )
        self._state[gateway] = (epoch, seq)
        return seq, stamped

    def commit(self) -> None:
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")

    def prune(self, gateway: str, epoch: str, seq: int) -> int:
        """Forget what `committed` covers; a position of another epoch covers nothing."""
        if self._state.get(gateway, ("", 0))[0] != epoch:
            return 0
        cur = self._db.execute("DELETE FROM outbox WHERE gateway = ? AND seq <= ?", (gateway, seq))
        self.commit()
        return cur.rowcount

    def first_seq(self, gateway: str) -> int:
        """The oldest seq not yet covered (last seq + 1 when nothing waits)."""
        row = self._db.execute(
            "SELECT min(seq) FROM outbox WHERE gateway = ?", (gateway,)
        ).fetchone()
        return int(row[0]) if row[0] is not None else self.last_seq(gateway) + 1

    def waiting(self, gateway: str, from_seq: int, limit: int) -> list[tuple[int, str, bytes]]:
        return [
            (int(s), str(t), bytes(p))
            for s, t, p in self._db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE gateway = ? AND seq >= ? "
                "ORDER BY seq LIMIT ?",
                (gateway, from_seq, limit),
            )
        ]

    def topics(self) -> dict[str, str]:
        return {
            str(g): str(t)
            for g, t in self._db.execute(
                "SELECT gateway, topic FROM gateways WHERE topic IS NOT NULL"
            )
        }

    def unconfirmed(self) -> int:
        row = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.execute("COMMIT")
        self._db.close()
