"""A steady live load over every gateway of the park plus probe readings (bench.engine)."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, replace

from bench.publishers.canonical import batch_item, batch_payload, now_us, single_payload, us_to_iso
from bench.publishers.clients import Clients
from bench.publishers.process import Payloads, PublishReport
from bench.stack.broker import PREFIX
from core import topics


@dataclass(frozen=True)
class LoadMeter:
    id: str
    unit: str
    delta: bool
    rollover: float | None
    rate_per_s: float
    start_value: float  # (unwrapped) register value of its last stored reading
    start_us: int  # time of its last stored reading (warm-up or fill), or 0


@dataclass(frozen=True)
class LoadGateway:
    user: str
    password: str
    site: str
    meters: tuple[LoadMeter, ...]


@dataclass(frozen=True)
class LoadJob:
    """Steady gateway batches spread round-robin over the gateways plus, every
    probe_interval_s, one single reading for the probe meter (value start + k - 1).
    Reading timestamps are the wall clock minus `shift_us` (0 unless --fill-minutes)."""

    port: int
    gateways: tuple[LoadGateway, ...]
    messages_per_s: float
    per_message: int
    seconds: float
    probe_gateway: str
    probe_site: str
    probe_meter: str
    probe_unit: str
    probe_start: float
    probe_interval_s: float
    probe_start_us: int = 0
    shift_us: int = 0

    @property
    def messages(self) -> int:
        return int(self.seconds * self.messages_per_s)

    @property
    def probes(self) -> int:
        return int(self.seconds / self.probe_interval_s) + 1

    def with_meter(self, meter: LoadMeter) -> LoadJob:
        gateways = tuple(
            replace(g, meters=tuple(meter if m.id == meter.id else m for m in g.meters))
            for g in self.gateways
        )
        return replace(self, gateways=gateways)

    @property
    def name(self) -> str:
        return "load"

    def users(self) -> list[tuple[str, str]]:
        return [(g.user, g.password) for g in self.gateways]

    def prepare(self) -> Payloads | None:
        return None  # payloads carry the wall-clock time: built as they go

    def publish(self, clients: Clients, prepared: Payloads | None) -> PublishReport:
        """Load batches at messages_per_s and probes every probe_interval_s, both on a
        fixed schedule from the start (a late message does not shift the next ones)."""
        state = LoadState(self)
        loaded = [g for g, gw in enumerate(self.gateways) if gw.meters]
        probe_topic = topics.reading(PREFIX, self.probe_site, self.probe_meter)
        probes: list[tuple[float, int]] = []
        lag = 0.0
        k = j = 0
        first = time.time()
        t0 = time.perf_counter()
        while k < self.messages or j < self.probes:
            load_due = t0 + k / self.messages_per_s if k < self.messages else math.inf
            probe_due = t0 + j * self.probe_interval_s if j < self.probes else math.inf
            lag = max(lag, clients.wait_until(min(load_due, probe_due)))
            at_us = now_us() - self.shift_us
            if probe_due <= load_due:
                us = max(at_us, (probes[-1][1] if probes else self.probe_start_us) + 1000)
                payload = single_payload(us_to_iso(us), self.probe_start + j, self.probe_unit)
                probes.append((time.time(), us))
                clients.publish(self.probe_gateway, probe_topic, payload)
                j += 1
            else:
                g = loaded[k % len(loaded)]
                gw = self.gateways[g]
                topic = topics.batch(PREFIX, gw.site, gw.user)
                clients.publish(gw.user, topic, state.batch(self, g, at_us))
                k += 1
        last = time.time()
        all_acked = clients.wait_acked(60)
        readings = k * self.per_message + j
        return PublishReport("load", first, last, all_acked, k + j, readings, lag, tuple(probes))


class LoadState:
    """Per-meter last timestamp and (unwrapped) register value of the load."""

    def __init__(self, job: LoadJob) -> None:
        self.rng = random.Random(7)
        self.last_us = {m.id: m.start_us for g in job.gateways for m in g.meters}
        self.value = {m.id: m.start_value for g in job.gateways for m in g.meters}
        self.cursor = [0] * len(job.gateways)

    def reading(self, m: LoadMeter, us: int) -> float:
        """The value of meter m's next reading at `us`: a counter grows by its rate
        (with noise) over the time since its previous reading; a delta is that amount."""
        last = self.last_us[m.id] or us - 12_000
        amount = m.rate_per_s * (us - last) / 1e6 * self.rng.uniform(0.8, 1.2)
        self.last_us[m.id] = us
        if m.delta:
            return max(amount, 1e-6)
        self.value[m.id] += amount
        return self.value[m.id] % m.rollover if m.rollover else self.value[m.id]

    def batch(self, job: LoadJob, g: int, at_us: int) -> bytes:
        """`per_message` readings cycling over gateway g's meters; each meter's
        readings 1 ms apart ending at `at_us`, strictly after its previous one."""
        gw = job.gateways[g]
        n = len(gw.meters)
        picked = [gw.meters[(self.cursor[g] + i) % n] for i in range(job.per_message)]
        self.cursor[g] = (self.cursor[g] + job.per_message) % n
        left = Counter(m.id for m in picked)
        parts = []
        for m in picked:
            left[m.id] -= 1
            us = max(at_us - 1000 * left[m.id], self.last_us[m.id] + 1000)
            parts.append(batch_item(m.id, us, self.reading(m, us), m.unit))
        return batch_payload(parts)
