"""Throttling of failed authentications, per client address (a token bucket each).

Every failed authentication (no key, unknown or revoked key) takes a token from
the client's bucket; an empty bucket answers 429 with Retry-After before the key
is even looked at. Successful requests cost nothing. The state lives in the
process: with several API workers or replicas each has its own buckets, so the
effective burst is multiplied by their number (docs/api.md says so). Behind a
reverse proxy every client shares the proxy's address unless uvicorn is told to
trust its forwarded headers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    at: float


class AuthThrottle:
    """`burst` failures at once, then one more every `60 / per_minute` seconds."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, client: str, now: float) -> Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            return Bucket(float(self.burst), now)
        tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        return Bucket(tokens, now)

    def retry_after_s(self, client: str) -> int:
        """Whole seconds until this client may try a key again; 0 when it may now."""
        with self._lock:
            bucket = self._refilled(client, self._clock())
        if bucket.tokens >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            bucket = self._refilled(client, now)
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            self._buckets[client] = bucket
            if len(self._buckets) > self.max_clients:
                self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they equal a new one); if every
        client is still throttled, drop the oldest half rather than grow."""
        full = [c for c in self._buckets if self._refilled(c, now).tokens >= self.burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) > self.max_clients:
            oldest = sorted(self._buckets, key=lambda c: self._buckets[c].at)
            for client in oldest[: len(oldest) // 2]:
                del self._buckets[client]
