"""Gateways: one per enterprise, publishing its meters' readings as batches (SPEC section 3).

Message faults happen here. Every message carries, per reading, what the ingestor
must do with it (`expect`): `stored`, `duplicate`, `conflict`, `quarantined` (with
the SPEC reason) or `deduplicated` (a repeat of a quarantined message, which the
quarantine keeps once). Expectations that depend on the wall clock (a skewed clock
lands in the future or not) are settled by `settle` just before publishing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from core import topics
from core.broker.limits import DEFAULT_MAX_PAYLOAD_BYTES
from core.park.models import Park
from simulator import rand
from simulator.devices import Sample
from simulator.faults import Fault, FaultPlan, FaultSpec
from simulator.messages import PENDING, Item, Message
from simulator.protocols import DeviceSplitter


@dataclass(frozen=True, slots=True)
class Limits:
    """The ingestor's limits (EMISSIONS_INGEST_*), so expectations match its config."""

    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_future_skew_s: int = 300


class Gateways:
    def __init__(
        self,
        park: Park,
        prefix: str,
        plan: FaultPlan | None,
        limits: Limits,
        seed: int,
        batch_s: int,
    ) -> None:
        self.prefix = prefix
        self.batch_s = batch_s
        self.step = batch_s
        self.plan = plan
        self.limits = limits
        self.seed = seed
        self.units = {m.id: m.unit for _, _, m in park.meters()}
        self.commissioned = {m.id: int(m.commissioned_at.timestamp()) for _, _, m in park.meters()}
        self.gateway_of = {m.id: e.gateway_id for _, e, m in park.meters()}
        self.site_of_gateway = {e.gateway_id: s.id for s in park.sites for e in s.enterprises}
        self.owner = {e.gateway_id: e.id for s in park.sites for e in s.enterprises}
        self.site_meters = {
            s.id: [m.id for e in s.enterprises for m in e.meters] for s in park.sites
        }
        self.seq = 0
        self.devices = DeviceSplitter(park, limits.max_payload_bytes)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def topic(self, gateway: str) -> str:
        return topics.batch(self.prefix, self.site_of_gateway[gateway], gateway)

    def is_batch_topic(self, topic: str) -> bool:
        """A canonical batch topic (a device's native topic is not one)."""
        route = topics.split_data(topic, self.prefix)
        if route is None:
            return False
        site, kind, gateway = route
        return kind == topics.GATEWAYS and self.site_of_gateway.get(gateway) == site

    def batches(
        self, tick: int, sent_at: int, samples: list[Sample], step: int | None = None
    ) -> list[Message]:
        """One batch per gateway with readings this tick (`step` long), faults applied."""
        self.step = step or self.batch_s
        by_gateway: dict[str, list[Sample]] = {}
        for s in samples:
            by_gateway.setdefault(self.gateway_of[s.meter], []).append(s)
        out: list[Message] = []
        for gateway in sorted(by_gateway):
            group = by_gateway[gateway]
            items = [Item(s.meter, s.ts, s.value, fault=s.fault) for s in group]
            message = Message(self._next(), gateway, self.topic(gateway), sent_at, items)
            spec = None
            if self.plan is not None:
                spec = self.plan.message_fault(gateway, tick, sent_at, self.gateway_of)
            out += self._apply(message, spec, tick) if spec else [message]
        for m in out:
            if not m.payload:
                m.payload = self.encode(m)
        # Gateways speaking a device protocol send one vendor message per reading.
        return self.devices.split(out, self._next, self.encode)

    def encode(self, m: Message) -> bytes:
        readings = [
            {"meter": i.meter, "ts": i.ts, "value": i.value, "unit": self.units.get(i.meter, "kWh")}
            for i in m.items
        ]
        doc: dict[str, object] = {"readings": readings, **m.extra}
        return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()

    def _apply(self, m: Message, spec: FaultSpec, tick: int) -> list[Message]:
        kind = spec.kind
        m.fault = kind.value
        draw = rand.unit(rand.key(self.seed, "variant", m.gateway), tick)
        if kind is Fault.duplicate:
            items = [replace(i) for i in m.items]
            return [m, replace(m, seq=self._next(), original=m, items=items)]
        if kind is Fault.out_of_order:
            m.due += self.step + 1  # just after the next tick's batch
            return [m]
        if kind is Fault.late:
            m.due += spec.for_s
            return [m]
        if kind is Fault.conflict:
            first = next((i for i in m.items if i.fault is None), None)
            if first is None:
                m.fault = None
                return [m]
            changed = Item(first.meter, first.ts, first.value + 1.0, "conflict", fault=kind.value)
            later = Message(self._next(), m.gateway, m.topic, m.due + 300, [changed], kind.value)
            m.fault = None
            return [m, later]
        if kind is Fault.unknown_meter:
            ghost = f"{self.owner[m.gateway]}-UNREG-{1 + int(draw * 9)}"
            m.items.append(Item(ghost, m.due, 1.0, "quarantined", "unknown_meter", kind.value))
            return [m]
        if kind is Fault.wrong_site:
            site = self.site_of_gateway[m.gateway]
            others = sorted(x for s, ms in self.site_meters.items() if s != site for x in ms)
            if not others:
                m.fault = None  # a one-site park has no other site's meters
                return [m]
            meter = others[int(draw * len(others))]
            m.items.append(Item(meter, m.due, 1.0, "quarantined", "wrong_site", kind.value))
            return [m]
        # Garbled and oversized messages come on top of the good batch (a corrupted
        # retransmission, a diagnostics dump): nothing real is lost, so the data-quality
        # outcomes of the readings stay exactly as the devices' faults say.
        m.fault = None
        bad = Message(self._next(), m.gateway, m.topic, m.due, [replace(i) for i in m.items])
        bad.fault = kind.value
        if kind is Fault.oversized:
            pad = self.limits.max_payload_bytes + 1024 - len(self.encode(bad))
            bad.extra = {"diagnostics": "0" * max(pad, 0)}
            bad.reason = "oversized"
            bad.payload = self.encode(bad)
        else:
            self._malformed(bad, draw)
        return [m, bad]

    def _malformed(self, m: Message, draw: float) -> None:
        """Truncated JSON, a misspelt key, or one reading with a broken timestamp."""
        if draw < 1 / 3:
            whole = self.encode(m)
            m.payload = whole[: max(1, len(whole) // 2)]
            m.reason = "not_json"
        elif draw < 2 / 3:
            body = {"reading": [{"meter": i.meter, "ts": i.ts, "value": i.value} for i in m.items]}
            m.payload = json.dumps(body, separators=(",", ":")).encode()
            m.reason = "invalid_payload"
        else:
            item = m.items[0]
            item.ts = "2026-13-45T25:61:00+07:00"
            item.expect, item.reason, item.fault = "quarantined", "invalid_timestamp", "malformed"
            m.items = [item]


def settle(m: Message, now: float, limits: Limits, commissioned: dict[str, int]) -> None:
    """Decide what the ingestor must do with each reading of `m`, published at `now`."""
    for item in m.items:
        if item.expect != PENDING:
            continue
        if m.reason is not None:
            item.expect, item.reason = "quarantined", m.reason
        elif not math.isfinite(item.value):
            item.expect, item.reason = "quarantined", "non_finite_value"
        elif isinstance(item.ts, int) and item.ts > now + limits.max_future_skew_s:
            item.expect, item.reason = "quarantined", "future_timestamp"
        elif isinstance(item.ts, int) and item.ts < commissioned.get(item.meter, 0):
            item.expect, item.reason = "quarantined", "before_commissioning"
        else:
            item.expect = "stored"


def settle_copy(copy: Message, original: Message) -> None:
    """A repeated message: stored readings become duplicates, quarantined ones are kept once."""
    for item, first in zip(copy.items, original.items, strict=True):
        if first.expect == "stored":
            item.expect, item.reason = "duplicate", None
        else:
            item.expect, item.reason = "deduplicated", first.reason
