"""N messages from one gateway user, as fast as possible or at a fixed rate."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from bench.publishers.canonical import batch_item, batch_payload, single_payload, us_to_dt
from bench.publishers.clients import Clients
from bench.publishers.process import Payloads, PublishReport
from bench.stack.broker import PREFIX
from core import topics

SITE_TZ = timezone(timedelta(hours=7))
STEP_US = 1000  # consecutive readings of a run are 1 ms apart: (meter, ts) never repeats


@dataclass(frozen=True)
class PublishJob:
    """N messages from one gateway user: single readings on its meters' topics, or
    batches on its gateway topic. Reading r (r = message * per_message + j) is for
    meter r mod len(meters) at base + r ms, with value r, or the publish wall-clock
    time when `stamp_values` (for latency)."""

    port: int
    user: str
    password: str
    kind: Literal["single", "batch"]
    site: str
    gateway: str
    meters: tuple[tuple[str, str], ...]
    messages: int
    per_message: int
    base_us: int
    rate: float | None = None  # messages per second; None: as fast as possible
    stamp_values: bool = False

    @property
    def name(self) -> str:
        return self.user

    @property
    def readings(self) -> int:
        return self.messages * self.per_message

    def reading(self, r: int) -> tuple[str, str, int]:
        meter, unit = self.meters[r % len(self.meters)]
        return meter, unit, self.base_us + r * STEP_US

    def last_key(self) -> tuple[str, datetime]:
        meter, _, us = self.reading(self.readings - 1)
        return meter, us_to_dt(us)

    def message(self, k: int, stamp: float | None = None) -> tuple[str, bytes]:
        if self.kind == "single":
            meter, unit, us = self.reading(k)
            ts = us_to_dt(us).astimezone(SITE_TZ).isoformat(timespec="milliseconds")
            value = float(k) if stamp is None else stamp
            return topics.reading(PREFIX, self.site, meter), single_payload(
                ts, value, unit
            ).encode()
        parts = []
        for j in range(self.per_message):
            r = k * self.per_message + j
            meter, unit, us = self.reading(r)
            parts.append(batch_item(meter, us, float(r) if stamp is None else stamp, unit))
        return topics.batch(PREFIX, self.site, self.gateway), batch_payload(parts)

    def users(self) -> list[tuple[str, str]]:
        return [(self.user, self.password)]

    def prepare(self) -> Payloads | None:
        """Unpaced runs publish payloads built ahead: building is not what they measure."""
        if self.rate is None and not self.stamp_values:
            return [self.message(k) for k in range(self.messages)]
        return None

    def publish(self, clients: Clients, prebuilt: Payloads | None) -> PublishReport:
        """Every message (paced if `rate`), then every PUBACK."""
        lag = 0.0
        rate = self.rate or math.inf
        first = time.time()
        t0 = time.perf_counter()
        for k in range(self.messages):
            clients.wait_window(self.user)  # before the stamp: it is the publish time
            if self.rate is not None:
                lag = max(lag, clients.wait_until(t0 + k / rate))
            if prebuilt is not None:
                topic, payload = prebuilt[k]
            else:
                topic, payload = self.message(k, time.time() if self.stamp_values else None)
            clients.publish(self.user, topic, payload)
        last = time.time()
        all_acked = clients.wait_acked(max(120.0, self.messages / 500))
        return PublishReport(self.user, first, last, all_acked, self.messages, self.readings, lag)
