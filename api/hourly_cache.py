"""Rendered hourly JSON per (site or enterprise, UTC day), revalidated on every request.

A site-year is ~5 MB of JSON; PostgreSQL needs ~100 ms to render it, while history
rarely changes. So each full UTC day of a request is looked up here and checked
against that day's fingerprint: (enterprises with totals that day, sum of their
versions) from `totals_versions`, which the engine bumps in the same transaction
whenever it rewrites an enterprise-day's totals (engine/rollups.py). Versions
only grow, so any committed rewrite changes the fingerprint; the check is one
index range read (~366 x enterprises rows for a year).

Only the engine writes totals. Entries also expire after `TTL_S` (so even a hand
edit of the totals tables shows within minutes) and are evicted least recently
used beyond the byte budget. Only full days inside a request are cached; the
partial edges are rendered anew.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import datetime

TTL_S = 600.0

Key = tuple[str, str, datetime]  # (table, owner id, UTC day start)
Fingerprint = tuple[int, int]  # (enterprises with totals that day, sum of their versions)


class HourlyCache:
    def __init__(self, max_bytes: int, ttl_s: float = TTL_S) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._entries: OrderedDict[Key, tuple[Fingerprint, float, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: Key, fingerprint: Fingerprint) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != fingerprint or time.monotonic() - entry[1] > self.ttl_s:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[2]

    def put(self, key: Key, fingerprint: Fingerprint, chunk: str) -> None:
        size = len(chunk) + 100
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[2]) + 100
            self._entries[key] = (fingerprint, time.monotonic(), chunk)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, _, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted) + 100
