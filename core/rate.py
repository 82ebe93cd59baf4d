"""Token buckets per key, in process memory: a burst, then a steady rate.

One owner for the two budgets the service keeps per client: failed API
authentications per address (api/throttle.py) and quarantine rows per publishing
gateway (ingest/quarantine.py). Thread-safe; the key set is bounded, so a client
inventing keys cannot grow it without limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(
        self,
        burst: int,
        per_minute: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            return Bucket(float(self.burst), now)
        return Bucket(min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate), now)

    def wait_s(self, key: str) -> float:
        """Seconds until `key` has a whole token again; 0 when it has one now."""
        with self._lock:
            tokens = self._refilled(key, self._clock()).tokens
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str, wanted: int = 1) -> int:
        """Take up to `wanted` whole tokens; returns how many were granted."""
        with self._lock:
            now = self._clock()
            bucket = self._refilled(key, now)
            granted = min(wanted, int(bucket.tokens))
            bucket.tokens -= granted
            if granted < wanted:  # a refused attempt still spends what is left
                bucket.tokens = min(bucket.tokens, 0.0)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._forget_full(now)
        return granted

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they equal a new one); if every key is
        still short, drop the oldest half rather than grow."""
        for key in [k for k in self._buckets if self._refilled(k, now).tokens >= self.burst]:
            del self._buckets[key]
        if len(self._buckets) > self.max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].at)
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]
