"""Throttling of failed authentications, per client address (core/rate.py buckets).

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
import time
from collections.abc import Callable

from core.rate import TokenBuckets


class AuthThrottle:
    """`burst` failures at once, then `per_minute` more a minute."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.buckets = TokenBuckets(burst, per_minute, max_clients, clock)

    def retry_after_s(self, client: str) -> int:
        """Whole seconds until this client may try a key again; 0 when it may now."""
        wait = self.buckets.wait_s(client)
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, client: str) -> None:
        self.buckets.take(client)
