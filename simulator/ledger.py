"""The ledger: one JSON line per published message and per injected fault.

A test reconciles it with the store: readings whose `expect` is `stored` must be in
`readings`, each `quarantined` one (or each message with a `reason`) a row of
`quarantine` with that reason, each `conflict` a row of `reading_conflicts`, and
each fault's `dq` a row of `data_quality_events`. docs/simulator.md has the format.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from simulator.devices import Event
from simulator.messages import Message


def iso(ts: int | float | str) -> str:
    if isinstance(ts, str):
        return ts
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def message_record(m: Message, published_at: float) -> dict[str, Any]:
    readings = []
    for item in m.items:
        entry: dict[str, Any] = {"meter": item.meter, "ts": iso(item.ts)}
        if math.isfinite(item.value):
            entry["value"] = item.value
        else:
            entry["value"], entry["raw"] = None, repr(item.value)
        entry["expect"] = item.expect
        if item.reason:
            entry["reason"] = item.reason
        if item.fault:
            entry["fault"] = item.fault
        readings.append(entry)
    return {
        "event": "publish",
        "seq": m.seq,
        "due": iso(m.due),
        "published_at": iso(published_at),
        "topic": m.topic,
        "bytes": len(m.payload),
        "fault": m.fault,
        "reason": m.reason,
        "repeats": m.original.seq if m.original is not None else None,
        "readings": readings,
    }


def event_record(e: Event) -> dict[str, Any]:
    return {
        "event": "fault",
        "fault": e.fault,
        "meter": e.meter,
        "ts": iso(e.ts),
        "dq": e.dq,
        "detail": e.detail,
    }


class Ledger:
    """Appends JSON lines to `path`; a no-op without one."""

    def __init__(self, path: Path | None) -> None:
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read(path: Path) -> list[dict[str, Any]]:
    """Every record of a ledger file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
