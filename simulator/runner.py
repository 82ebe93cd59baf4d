"""Driving the simulated park tick by tick: real time, accelerated, or at a fixed load.

Each tick (`batch_s` of simulated time) every device reads what it measured, every
gateway builds its batch, and the messages that are due go out in order of their
due time (late and out-of-order ones wait in the outbox). Real time sleeps until a
tick has happened on the wall clock (after catching up on any backfill), accelerated
never sleeps, load throttles to a target number of readings per second.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from core.logs import get_logger
from core.park.models import Park
from simulator import state
from simulator.faults import FaultSpec
from simulator.gateway import Gateways, Limits, settle, settle_copy
from simulator.generate import Simulation
from simulator.ledger import Ledger, event_record, message_record
from simulator.messages import Message
from simulator.publisher import Sink

log = get_logger("simulator")

# Messages ingest cannot read a `seq` from: they stay out of end-to-end delivery.
UNREADABLE = frozenset({"not_json", "oversized"})


class Mode(StrEnum):
    realtime = "realtime"
    accelerated = "accelerated"
    load = "load"


@dataclass(frozen=True)
class RunConfig:
    mode: Mode
    start: datetime
    end: datetime | None  # None: run until stopped (real time) or until now
    seed: int = 1
    interval_s: int = 60
    jitter_s: int = 5
    batch_s: int = 60
    catchup_batch_s: int | None = None  # batch period while catching up on history
    faults: Sequence[FaultSpec] = ()
    prefix: str = "parks"
    limits: Limits = field(default_factory=Limits)
    rate: float = 0.0  # load mode: readings per second
    duration_s: float | None = None  # load mode: stop after this much wall time


@dataclass
class Summary:
    readings: int = 0
    messages: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    expects: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    simulated_s: int = 0

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.elapsed_s if self.elapsed_s > 0 else 0.0


Progress = Callable[[int, Summary], None]  # (simulated seconds done, summary so far)


class Runner:
    def __init__(
        self,
        park: Park,
        config: RunConfig,
        sink: Sink,
        ledger: Ledger,
        *,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        state_path: Path | None = None,
    ) -> None:
        self.config = config
        self.state_path = state_path
        self.sink = sink
        self.ledger = ledger
        self.clock = clock
        self.stop = stop or threading.Event()
        self.sim = Simulation(
            park,
            seed=config.seed,
            start=config.start,
            end=config.end,
            interval_s=config.interval_s,
            jitter_s=config.jitter_s,
            faults=config.faults,
        )
        self.gateways = Gateways(
            park, config.prefix, self.sim.plan, config.limits, config.seed, config.batch_s
        )
        self.outbox: list[tuple[int, int, Message]] = []
        self.summary = Summary()

    def _end(self) -> int | None:
        if self.config.end is not None:
            return int(self.config.end.timestamp())
        if self.config.mode is Mode.realtime:
            return None
        return int(self.clock())

    def run(self, progress: Progress | None = None) -> Summary:
        cfg = self.config
        begun = saved_at = time.monotonic()
        end = self._end()
        start = t = self.sim.start
        self.ledger.write(
            {
                "event": "run",
                "mode": cfg.mode.value,
                "seed": cfg.seed,
                "start": cfg.start.isoformat(),
                "end": cfg.end.isoformat() if cfg.end else None,
                "interval_s": cfg.interval_s,
                "batch_s": cfg.batch_s,
                "catchup_batch_s": cfg.catchup_batch_s,
                "faults": [f"{f.kind.value}" for f in cfg.faults],
            }
        )
        try:
            while not self.stop.is_set():
                step = self._step(t)
                tick_end = (t // step + 1) * step
                if end is not None and tick_end > end:
                    tick_end = end
                self._wait_for(tick_end)
                if self.stop.is_set():
                    break
                self._tick(tick_end // step, tick_end, step)
                t = tick_end
                self.summary.simulated_s = tick_end - start
                self.summary.elapsed_s = time.monotonic() - begun
                if progress is not None:
                    progress(tick_end - start, self.summary)
                self._throttle(begun)
                if end is not None and tick_end >= end:
                    break
                if cfg.duration_s is not None and time.monotonic() - begun >= cfg.duration_s:
                    break
                if self.state_path is not None and time.monotonic() - saved_at >= 60:
                    self.sink.drain()  # what the state says was sent, the broker has
                    state.save(self.state_path, self.sim, t)
                    saved_at = time.monotonic()
            self._flush(None)
            self.sink.drain()
            if self.state_path is not None:
                state.save(self.state_path, self.sim, t)
        finally:
            self.summary.elapsed_s = time.monotonic() - begun
            self.ledger.write(
                {
                    "event": "summary",
                    "readings": self.summary.readings,
                    "messages": self.summary.messages,
                    "faults": dict(self.summary.faults),
                    "expect": dict(self.summary.expects),
                    "elapsed_s": round(self.summary.elapsed_s, 3),
                }
            )
        return self.summary

    def _step(self, t: int) -> int:
        """History goes out in bigger batches (one socket write per gateway and batch is
        what limits the rate); a real-time tick is `batch_s`."""
        big = self.config.catchup_batch_s
        if big is None or big <= self.config.batch_s:
            return self.config.batch_s
        if self.config.mode is not Mode.realtime or (t // big + 1) * big <= self.clock():
            return big
        return self.config.batch_s

    def _wait_for(self, tick_end: int) -> None:
        """Real time: a tick is published once it has happened on the wall clock."""
        if self.config.mode is not Mode.realtime:
            return
        while not self.stop.is_set() and (left := tick_end - self.clock()) > 0:
            self._flush(self.clock())
            self.stop.wait(min(left, 1.0))

    def _throttle(self, begun: float) -> None:
        if self.config.mode is not Mode.load or self.config.rate <= 0:
            return
        ahead = self.summary.readings / self.config.rate - (time.monotonic() - begun)
        if ahead > 0:
            self.stop.wait(ahead)

    def _tick(self, tick: int, tick_end: int, step: int) -> None:
        samples, events = self.sim.advance(tick_end)
        for e in events:
            if self.ledger.enabled:
                self.ledger.write(event_record(e))
            self.summary.faults[e.fault] += 1
            log.debug("fault", fault=e.fault, meter=e.meter, ts=e.ts, dq=e.dq)
        for m in self.gateways.batches(tick, tick_end, samples, step):
            if m.fault:
                self.summary.faults[m.fault] += 1
            heapq.heappush(self.outbox, (m.due, m.seq, m))
        now = self.clock() if self.config.mode is Mode.realtime else None
        self._flush(min(tick_end, now) if now is not None else tick_end)

    def _flush(self, until: float | None) -> None:
        """Publish what is due by `until` (simulated time), or everything left."""
        while self.outbox and (until is None or self.outbox[0][0] <= until):
            _, _, m = heapq.heappop(self.outbox)
            now = self.clock()
            if m.original is not None:
                settle_copy(m, m.original)
            else:
                settle(m, now, self.config.limits, self.gateways.commissioned)
            # Only canonical batches carry seq/epoch; a device's own payload cannot.
            sequenced = m.reason not in UNREADABLE and self.gateways.is_batch_topic(m.topic)
            self.sink.publish(m.gateway, m.topic, m.payload, sequenced=sequenced)
            if self.ledger.enabled:
                self.ledger.write(message_record(m, now))
            self.summary.messages += 1
            self.summary.readings += len(m.items)
            for item in m.items:
                self.summary.expects[item.expect] += 1
