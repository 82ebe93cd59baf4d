"""Faults on demand: what can go wrong, when, and which data-quality outcome SPEC expects.

A fault is `KIND[:key=value,...]`, e.g. `glitch:rate=0.001`,
`silent:at=2026-01-05T08:00+07:00,meter=NCK-STL1-E-01,for=2h`. Keys: `rate`
(chance per eligible reading, or per gateway batch for message faults), `at` (an
exact time: the first eligible reading or batch at or after it; repeat the flag
for several), `meter` (only this meter, or for message faults its gateway), `for`
(silence length, lateness), `skew` (clock offset, signed: `1y`, `-30m`).
Decisions are pure functions of the seed (see `simulator.rand`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from simulator import rand


class Fault(StrEnum):
    # device faults: the meter itself misbehaves
    glitch = "glitch"  # one reading of 0 (stored; a glitch event)
    reset = "reset"  # register back to 0 (stored; a reset event, or wrap per SPEC 5)
    rollover = "rollover"  # register preset to wrap past `rollover` at the time (a wrap event)
    silent = "silent"  # no readings for `for` (a long_gap event if longer than max_gap_s)
    clock_skew = "clock_skew"  # timestamps off by `skew` (quarantined if future/pre-commissioning)
    nan = "nan"  # NaN or Infinity value (quarantined: non_finite_value)
    # message faults: the gateway or the network misbehaves
    duplicate = "duplicate"  # a batch published twice (dropped as duplicates)
    out_of_order = "out_of_order"  # a batch sent after the next one (stored)
    late = "late"  # a batch delivered `for` later (stored; hours restated)
    malformed = "malformed"  # truncated JSON, a wrong key, or a bad timestamp (quarantined)
    unknown_meter = "unknown_meter"  # an extra reading of an unregistered meter (quarantined)
    wrong_site = "wrong_site"  # an extra reading of another site's meter (quarantined)
    oversized = "oversized"  # a batch over the ingest payload limit (quarantined)
    conflict = "conflict"  # a reading re-sent later with another value (a conflict row)


DEVICE_FAULTS = frozenset(
    {Fault.glitch, Fault.reset, Fault.rollover, Fault.silent, Fault.clock_skew, Fault.nan}
)
COUNTER_ONLY = frozenset({Fault.glitch, Fault.reset, Fault.rollover})
DEFAULT_FOR_S = {Fault.silent: 2 * 3600, Fault.late: 3 * 3600}
DEFAULT_SKEW_S = 366 * 86400  # a clock a year ahead, as after a bad GPS/NTP fix

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> int:
    """'90s', '15m', '3h', '2d', '1y', '-30m' or plain seconds -> seconds."""
    match = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)([smhdwy]?)", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 15m, 3h, 2d, 1y)")
    return round(float(match.group(1)) * _UNITS[match.group(2) or "s"])


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: Fault
    rate: float = 0.0
    at: int | None = None  # Unix seconds
    meter: str | None = None
    for_s: int = 0
    skew_s: int = DEFAULT_SKEW_S

    @property
    def device(self) -> bool:
        return self.kind in DEVICE_FAULTS


def parse_spec(text: str) -> FaultSpec:
    """Raises ValueError naming what is wrong."""
    name, _, rest = text.partition(":")
    try:
        kind = Fault(name.strip().replace("-", "_"))
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {name!r} (known: {known})") from None
    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        k, sep, v = part.partition("=")
        if not sep or k not in {"rate", "at", "meter", "for", "skew"}:
            raise ValueError(f"{text!r}: {part!r} is not rate=, at=, meter=, for= or skew=")
        values[k] = v.strip()
    rate = float(values.get("rate", "0"))
    if not 0 <= rate <= 1 or math.isnan(rate):
        raise ValueError(f"{text!r}: rate must be between 0 and 1")
    at = None
    if "at" in values:
        moment = datetime.fromisoformat(values["at"])
        if moment.tzinfo is None:
            raise ValueError(f"{text!r}: at= needs a UTC offset, e.g. 2026-01-05T08:00+07:00")
        at = int(moment.timestamp())
    if at is None and rate == 0:
        raise ValueError(f"{text!r}: give rate= or at=")
    for_s = parse_duration(values["for"]) if "for" in values else DEFAULT_FOR_S.get(kind, 0)
    skew_s = parse_duration(values["skew"]) if "skew" in values else DEFAULT_SKEW_S
    return FaultSpec(kind, rate, at, values.get("meter"), for_s, skew_s)


@dataclass
class FaultPlan:
    """Which reading or batch gets which fault. Stateful only for one-shot schedules."""

    specs: list[FaultSpec]
    seed: int
    fired: set[int] = field(default_factory=set)

    def _targets(self, index: int, spec: FaultSpec, candidates: list[str]) -> str | None:
        if spec.meter is not None or not candidates:
            return spec.meter
        pick = rand.mix(rand.key(self.seed, "target", index, spec.kind))
        return sorted(candidates)[pick % len(candidates)]

    def device_fault(
        self, meter: str, slot: int, ts: int, eligible: dict[Fault, list[str]]
    ) -> FaultSpec | None:
        """The fault for reading `slot` of `meter` (read at `ts`), if any.

        `eligible` maps each device fault to the meters it can hit."""
        for index, spec in enumerate(self.specs):
            if not spec.device or spec.kind is Fault.rollover:
                continue
            if meter not in eligible.get(spec.kind, ()):
                continue
            if spec.at is not None:
                if index in self.fired or ts < spec.at:
                    continue
                if self._targets(index, spec, eligible[spec.kind]) != meter:
                    continue
                self.fired.add(index)
                return spec
            if (
                spec.meter in (None, meter)
                and rand.unit(rand.key(self.seed, spec.kind, meter), slot) < spec.rate
            ):
                return spec
        return None

    def message_fault(
        self, gateway: str, tick: int, ts: int, gateways: dict[str, str]
    ) -> FaultSpec | None:
        """The fault for `gateway`'s batch of tick `tick` (sent at `ts`), if any.

        `gateways` maps meter ids to gateway ids.
        """
        for index, spec in enumerate(self.specs):
            if spec.device:
                continue
            target = gateways.get(spec.meter) if spec.meter else None
            if spec.at is not None:
                if index in self.fired or ts < spec.at:
                    continue
                if (target or self._targets(index, spec, sorted(set(gateways.values())))) != (
                    gateway
                ):
                    continue
                self.fired.add(index)
                return spec
            if (
                target in (None, gateway)
                and rand.unit(rand.key(self.seed, spec.kind, gateway), tick) < spec.rate
            ):
                return spec
        return None

    def rollover_at(
        self, meter: str, start: int, end: int, readings: int, eligible: list[str]
    ) -> int | None:
        """When a rollover fault makes `meter` wrap in [start, end), if it does."""
        if meter not in eligible:
            return None
        for index, spec in enumerate(self.specs):
            if spec.kind is not Fault.rollover or spec.meter not in (None, meter):
                continue
            if spec.at is not None:
                if start <= spec.at < end and self._targets(index, spec, eligible) == meter:
                    return spec.at
                continue
            stream = rand.key(self.seed, "rollover", index, meter)
            if rand.unit(stream, 0) < spec.rate * readings:
                return start + int(rand.unit(stream, 1) * (end - start))
        return None
