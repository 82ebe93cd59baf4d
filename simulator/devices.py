"""Meters as devices: a register that counts (and wraps), read every N seconds with jitter.

A counter meter integrates what it measures into its register and reports the
register; a delta meter reports what it measured over each `interval_s`. Device
faults (glitch, reset, rollover, silence, clock skew, NaN) happen here, each
reported as an `Event` naming the data-quality outcome SPEC section 5 expects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from core.park.models import Meter
from simulator import rand
from simulator.faults import Fault, FaultPlan, FaultSpec

NOISE = 0.04  # slow multiplicative noise (standard deviation)
WHITE = 0.01  # reading-to-reading noise
NOISE_KNOT_S = 900
STEP_S = 300  # integration step for long intervals
COOLDOWN = 3  # clean readings after a device fault before the next one


@dataclass(frozen=True, slots=True)
class Sample:
    meter: str
    ts: int  # as stamped by the device (off when its clock is)
    value: float  # register, or consumption over the interval; NaN/inf on a fault
    read_at: int  # when it was really read
    fault: Fault | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An injected fault (or a natural register wrap) for the ledger."""

    fault: str
    meter: str
    ts: int
    dq: str | None  # the data_quality_events kind SPEC expects, if any
    detail: dict[str, float | int | str | bool] = field(default_factory=dict)


def reading_period(meter: Meter, interval_s: int) -> int:
    if meter.reading == "delta":
        return meter.interval_s or 900
    # pulse-output meters the park file lets go quiet for 2 h are read hourly
    return 3600 if meter.max_gap_s >= 7200 else interval_s


class Device:
    def __init__(
        self,
        meter: Meter,
        rate: Callable[[float], float],
        *,
        seed: int,
        interval_s: int,
        jitter_s: int,
        start: int,
    ) -> None:
        self.meter = meter
        self.rate = rate  # what it measures per hour at a time, before noise
        self.period = reading_period(meter, interval_s)
        self.jitter = 0 if meter.reading == "delta" else min(jitter_s, (self.period - 1) // 2)
        self.noise_key = rand.key(seed, "noise", meter.id)
        self.jitter_key = rand.key(seed, "jitter", meter.id)
        # readings start in the run and after commissioning, jitter or not
        self.not_before = max(start, math.ceil(meter.commissioned_at.timestamp()))
        self.slot = -(-(self.not_before - self.jitter) // self.period)  # ceil
        if meter.reading == "delta":
            self.slot += 1  # a whole interval after the start
        self.last_read = self.not_before
        self.rollover = meter.rollover
        top = self.rollover or 10 ** (4 + 3 * rand.unit(rand.key(seed, "register", meter.id), 1))
        self.register = top * rand.unit(rand.key(seed, "register", meter.id), 0)
        self.last_value: float | None = None  # last reading the store will keep
        self.last_sent_ts: int | None = None
        self.cooldown = 0
        self.silent: tuple[int, int] | None = None
        self.skipped = 0
        self.wraps = 0
        self.injected_wrap: int | None = None  # index of the wrap a rollover fault caused
        self.wrapped = False  # the injected wrap happened since the last kept reading
        self._knot, self._a, self._b = -1.0, 0.0, 0.0
        self._next_at: tuple[int, int] = (self.slot, self.slot_time(self.slot))

    # ---- what the meter measures -----------------------------------------------
    def noise(self, ts: float) -> float:
        knot, frac = divmod(ts / NOISE_KNOT_S, 1.0)
        if knot != self._knot:  # the knots change every 15 minutes: keep the last pair
            self._knot = knot
            self._a = rand.centred(self.noise_key, int(knot))
            self._b = rand.centred(self.noise_key, int(knot) + 1)
        return max(0.0, 1 + NOISE * (self._a * (1 - frac) + self._b * frac))

    def consumption(self, t0: int, t1: int) -> float:
        """What the meter measures over [t0, t1], noise included."""
        steps = max(1, -(-(t1 - t0) // STEP_S))
        width = (t1 - t0) / steps
        total = 0.0
        for i in range(steps):
            mid = t0 + (i + 0.5) * width
            total += self.rate(mid) * self.noise(mid)
        return total * width / 3600

    def preset_wrap(self, at: int, start: int) -> None:
        """Rollover fault: start the register where it will pass `rollover` at `at`."""
        assert self.rollover is not None
        used = self.consumption(start, at)
        self.register = (self.rollover - used % self.rollover) % self.rollover
        self.injected_wrap = int(used // self.rollover)

    def fast_forward(self, t0: int, t1: int) -> None:
        """The meter counted while nobody read it (between two runs)."""
        if self.meter.reading != "counter":
            return
        self.register += self.consumption(t0, t1)
        if self.rollover is not None:
            turns, self.register = divmod(self.register, self.rollover)
            self.wraps += int(turns)

    # ---- readings ----------------------------------------------------------------
    def _slot_at(self) -> int:
        if self._next_at[0] != self.slot:
            self._next_at = (self.slot, self.slot_time(self.slot))
        return self._next_at[1]

    def slot_time(self, slot: int) -> int:
        if not self.jitter:
            return slot * self.period
        offset = round((2 * rand.unit(self.jitter_key, slot) - 1) * self.jitter)
        return slot * self.period + offset

    def advance(
        self, until: int, plan: FaultPlan | None, eligible: dict[Fault, list[str]]
    ) -> tuple[list[Sample], list[Event]]:
        """Readings taken before `until`, with the events of faults they carry."""
        samples: list[Sample] = []
        events: list[Event] = []
        while (read_at := self._slot_at()) < until:
            slot = self.slot
            self.slot += 1
            if read_at < self.not_before:
                continue
            used = self.consumption(self.last_read, read_at)
            self.last_read = read_at
            white = 1 + WHITE * rand.centred(self.jitter_key ^ 1, slot)
            used = max(0.0, used * white)
            spec = None
            if plan is not None and self.cooldown == 0 and self.silent is None:
                spec = plan.device_fault(self.meter.id, slot, read_at, eligible)
            self.cooldown = max(0, self.cooldown - 1)
            if spec is not None:
                self.cooldown = COOLDOWN
            sample = self._read(slot, read_at, used, spec, events)
            if sample is not None:
                samples.append(sample)
        return samples, events

    def _count(self, used: float) -> bool:
        """Add `used` to the register; True when it wrapped past `rollover`."""
        self.register += used
        if self.rollover is None or self.register < self.rollover:
            return False
        self.register -= self.rollover
        self.wrapped = self.wrapped or self.wraps == self.injected_wrap
        self.wraps += 1
        return True

    def _read(
        self, slot: int, read_at: int, used: float, spec: FaultSpec | None, events: list[Event]
    ) -> Sample | None:
        counter = self.meter.reading == "counter"
        if spec is not None and spec.kind is Fault.reset:
            self.register = 0.0
        wrapped_now = counter and self._count(used)
        if wrapped_now and spec is not None and spec.kind is Fault.glitch:
            spec = None  # a dip at a wrap is a wrap: no glitch to inject there
        value = math.floor(self.register * 1000) / 1000 if counter else round(used, 4)
        if self.silent is not None:
            if read_at < self.silent[1]:
                self.skipped += 1
                return None
            detail: dict[str, float | int | str | bool] = {
                "from": self.silent[0],
                "missed": self.skipped,
            }
            self.silent = None
            return self._clean(read_at, value, events, Fault.silent, detail)
        if spec is None or spec.kind is Fault.reset:
            return self._clean(read_at, value, events, spec.kind if spec else None)
        mid = self.meter.id
        if spec.kind is Fault.glitch:
            dq = "glitch" if self.last_value else None  # a dip below the last kept reading
            events.append(Event(spec.kind, mid, read_at, dq, {"register": value}))
            return Sample(mid, read_at, 0.0, read_at, spec.kind)
        if spec.kind is Fault.silent:
            self.silent = (read_at, read_at + spec.for_s)
            self.skipped = 1
            return None
        if spec.kind is Fault.clock_skew:
            ts = read_at + spec.skew_s
            events.append(Event(spec.kind, mid, read_at, None, {"stamped": ts}))
            return Sample(mid, ts, value, read_at, spec.kind)
        bad = math.nan if rand.unit(self.noise_key ^ 7, slot) < 0.5 else math.inf
        events.append(Event(spec.kind, mid, read_at, None, {"register": value}))
        return Sample(mid, read_at, bad, read_at, spec.kind)

    def _clean(
        self,
        read_at: int,
        value: float,
        events: list[Event],
        fault: Fault | None = None,
        detail: dict[str, float | int | str | bool] | None = None,
    ) -> Sample:
        """A reading the store keeps, with the data-quality events SPEC 5 derives from it
        and the last kept reading: a reset, a wrap (however many readings a fault hid),
        a long gap (a silence, or readings lost to faults)."""
        previous, since = self.last_value, self.last_sent_ts
        mid = self.meter.id
        if self.meter.reading == "counter":
            dip = previous is not None and value < previous
            if fault is Fault.reset:
                drop = (previous or 0.0) - value
                wrap = dip and self.rollover is not None and drop > self.rollover / 2
                dq = ("wrap" if wrap else "reset") if dip else None
                events.append(Event(fault, mid, read_at, dq, {"previous": previous or 0.0}))
            elif dip:
                kind = Fault.rollover.value if self.wrapped else "natural_wrap"
                events.append(Event(kind, mid, read_at, "wrap", {"previous": previous or 0.0}))
            self.wrapped = False
            gap = read_at - since if since is not None else 0
            long_gap = gap > self.meter.max_gap_s
            if fault is Fault.silent or long_gap:
                name = Fault.silent.value if fault is Fault.silent else "lost_readings"
                info = (detail or {}) | {"gap_s": gap}
                events.append(Event(name, mid, read_at, "long_gap" if long_gap else None, info))
            self.last_value = value
        elif fault is Fault.silent:
            events.append(Event(fault, mid, read_at, None, detail or {}))
        self.last_sent_ts = read_at
        return Sample(mid, read_at, value, read_at, fault)
