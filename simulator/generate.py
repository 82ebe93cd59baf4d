"""The simulated park as a pure, deterministic generator: no MQTT, no clock, no I/O.

    from simulator.generate import readings
    for r in readings(park, start, end, seed=7):   # r.meter_id, r.ts, r.value
        ...

gives every meter's readings (register values for counters, interval consumption
for delta meters) in time order, exactly as the devices would report them without
faults. `Simulation` is the stateful engine behind it, which the MQTT runner drives
tick by tick with faults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.park.models import Park
from simulator import plant
from simulator.devices import Device, Event, Sample, reading_period
from simulator.faults import COUNTER_ONLY, DEVICE_FAULTS, Fault, FaultPlan, FaultSpec

STATE_RESOLUTION_S = 60  # enterprise load is evaluated once a minute


@dataclass(frozen=True, slots=True)
class Reading:
    meter_id: str
    ts: datetime
    value: float


class Simulation:
    """All meters of a park from `start`; `advance(until)` returns what they read."""

    def __init__(
        self,
        park: Park,
        *,
        seed: int,
        start: datetime,
        end: datetime | None = None,
        interval_s: int = 60,
        jitter_s: int = 5,
        faults: Sequence[FaultSpec] = (),
    ) -> None:
        self.park = park
        self.seed = seed
        self.start = int(start.timestamp())
        self.end = int(end.timestamp()) if end is not None else self.start + 86400
        self.plan = FaultPlan(list(faults), seed) if faults else None
        self.models = {e.id: plant.build(s, e) for s in park.sites for e in s.enterprises}
        self.gateway_of = {m.id: e.gateway_id for _, e, m in park.meters()}
        self.eligible = self._eligible()
        self._states: dict[tuple[str, int], plant.State] = {}
        self.devices: list[Device] = []
        for model in self.models.values():
            for mm in model.meters.values():
                device = Device(
                    mm.meter,
                    self._rate(model, mm),
                    seed=seed,
                    interval_s=interval_s,
                    jitter_s=jitter_s,
                    start=self.start,
                )
                self._preset_rollover(device, interval_s)
                self.devices.append(device)

    def _eligible(self) -> dict[Fault, list[str]]:
        out: dict[Fault, list[str]] = {}
        for kind in DEVICE_FAULTS:
            out[kind] = [
                m.id
                for _, _, m in self.park.meters()
                if (kind not in COUNTER_ONLY or m.reading == "counter")
                and (kind is not Fault.rollover or m.rollover is not None)
                and m.commissioned_at.timestamp() < self.start
            ]
        return out

    def _preset_rollover(self, device: Device, interval_s: int) -> None:
        if self.plan is None:
            return
        meter = device.meter
        readings = (self.end - self.start) // reading_period(meter, interval_s)
        eligible = self.eligible[Fault.rollover]
        at = self.plan.rollover_at(meter.id, self.start, self.end, readings, eligible)
        if at is not None:
            device.preset_wrap(at, self.start)

    def _rate(self, model: plant.EnterpriseModel, mm: plant.MeterModel) -> Callable[[float], float]:
        ent_id = model.enterprise.id

        def rate(ts: float) -> float:
            minute = int(ts // STATE_RESOLUTION_S)
            state = self._states.get((ent_id, minute))
            if state is None:
                if len(self._states) > 200_000:
                    self._states.clear()
                state = plant.state(model, self.seed, minute * STATE_RESOLUTION_S)
                self._states[(ent_id, minute)] = state
            return plant.flow(model, mm, state)

        return rate

    def advance(self, until: int) -> tuple[list[Sample], list[Event]]:
        """Readings taken before `until` (Unix seconds) since the last call, in time order."""
        samples: list[Sample] = []
        events: list[Event] = []
        for device in self.devices:
            more, happened = device.advance(until, self.plan, self.eligible)
            samples += more
            events += happened
        samples.sort(key=lambda s: (s.read_at, s.meter))
        events.sort(key=lambda e: (e.ts, e.meter))
        return samples, events


def readings(
    park: Park,
    start: datetime,
    end: datetime,
    *,
    seed: int,
    interval_s: int = 60,
    jitter_s: int = 5,
    step_s: int = 3600,
) -> Iterator[Reading]:
    """Every meter's fault-free readings in [start, end), in time order."""
    sim = Simulation(
        park, seed=seed, start=start, end=end, interval_s=interval_s, jitter_s=jitter_s
    )
    stop = int(end.timestamp())
    t = sim.start
    while t < stop:
        t = min(stop, t + step_s)
        samples, _ = sim.advance(t)
        for s in samples:
            yield Reading(s.meter, datetime.fromtimestamp(s.ts, UTC), s.value)
