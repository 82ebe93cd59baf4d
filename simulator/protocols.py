"""Gateways that speak a device protocol (SPEC section 3.1): canonical messages to
the vendor's own payloads. Pure: no I/O, deterministic.

A device sends one reading per message, so each canonical batch of such a gateway
becomes one message per reading, on the device's native topic, logged in as the
broker user the ACL gives that topic. What the ingestor must do with each reading
(`expect`) carries over unchanged, with two adjustments that keep the ledger
truthful: a value converted to the device's unit and back is what the store holds,
and readings a device protocol cannot express (a meter id the device does not
have: the `unknown_meter` and `wrong_site` faults) are not sent. A whole-message
fault (not JSON, not an object, oversized) is applied to the device payload.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core import topics
from core.park.devices import PER_DEVICE_CLIENT, Device, Protocol
from core.park.models import Park
from core.units import convert
from simulator.messages import Item, Message

UNSENDABLE = frozenset({"unknown_meter", "wrong_site"})
DEDUP_NS = uuid.UUID("6f1d0b6e-4f3c-4e0e-9a51-3d2f0c7b9a10")
FIXED_UNIT = {Protocol.shelly_gen2: "Wh", Protocol.tasmota: "kWh"}


@dataclass(frozen=True, slots=True)
class Target:
    """Where one meter's readings go: its device, topic and broker user."""

    protocol: Protocol
    device: Device
    topic: str
    client: str  # the broker user that publishes it
    meter_unit: str
    timezone: str

    @property
    def device_unit(self) -> str:
        return FIXED_UNIT.get(self.protocol) or self.device.unit or self.meter_unit


def targets(park: Park) -> dict[str, Target]:
    """Mapped meters (the first mapping of a meter wins) and their targets."""
    units = {m.id: m.unit for _, _, m in park.meters()}
    out: dict[str, Target] = {}
    for site in park.sites:
        for ent in site.enterprises:
            for d in ent.devices:
                if d.meter in out or d.meter not in units:
                    continue
                per_device = ent.protocol in PER_DEVICE_CLIENT
                out[d.meter] = Target(
                    ent.protocol,
                    d,
                    topics.native(ent.protocol, ent.gateway_id, d.device, d.application),
                    d.device if per_device else ent.gateway_id,
                    units[d.meter],
                    d.timezone or site.timezone,
                )
    return out


def native_only(park: Park) -> frozenset[str]:
    """Gateways that publish nothing canonical (the ChirpStack or Neuron client):
    their unmapped meters have no way to the broker."""
    return frozenset(
        e.gateway_id
        for s in park.sites
        for e in s.enterprises
        if e.protocol not in (Protocol.canonical, *PER_DEVICE_CLIENT)
    )


def clients(park: Park) -> list[str]:
    """Every broker user the simulator logs in as: canonical gateways with meters
    left to publish, and the device protocols' clients."""
    mapped = targets(park)
    native = native_only(park)
    users = {t.client for t in mapped.values()}
    for _, ent, meter in park.meters():
        if meter.id not in mapped and ent.gateway_id not in native:
            users.add(ent.gateway_id)
    return sorted(users)


def _nested(path: str, value: object) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    node = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return doc


def _utc(ts: int | str) -> str:
    return ts if isinstance(ts, str) else datetime.fromtimestamp(ts, UTC).isoformat()


def device_doc(target: Target, item: Item, value: float) -> dict[str, Any]:
    """The vendor payload of one reading, `value` in the device's unit."""
    d = target.device
    if target.protocol is Protocol.chirpstack_v4:
        key = f"{d.device}/{item.ts}/{value!r}"
        return {
            "deduplicationId": str(uuid.uuid5(DEDUP_NS, key)),
            "time": _utc(item.ts),
            "deviceInfo": {
                "applicationId": d.application,
                "deviceName": item.meter,
                "devEui": d.device.lower(),
            },
            "fPort": 1,
            "object": _nested(d.field, value),
        }
    if target.protocol is Protocol.shelly_gen2:
        component, key = d.field.split(".", 1)
        status = {"id": int(component.split(":")[1]), key: value}
        return {
            "src": d.device,
            "dst": "emissions",
            "method": "NotifyStatus",
            "params": {"ts": item.ts, component: status},
        }
    if target.protocol is Protocol.tasmota:
        local = item.ts
        if not isinstance(local, str):
            stamp = datetime.fromtimestamp(local, ZoneInfo(target.timezone))
            local = stamp.replace(tzinfo=None).isoformat()
        _, name, *index = d.field.split(".")
        total: object = value
        if index:
            total = [0.0] * int(index[0]) + [value]
        return {"Time": local, "ENERGY": {name: total}}
    node, group = d.device.split("/", 1)
    stamp_ms = item.ts if isinstance(item.ts, str) else item.ts * 1000
    return {
        "timestamp": stamp_ms,
        "node": node,
        "group": group,
        "values": {d.field: value},
        "errors": {},
    }


def spoil(payload: bytes, reason: str | None, max_payload_bytes: int) -> bytes:
    """A whole-message fault, as the ingestor will see it on a device topic."""
    if reason == "not_json":
        # Cut the end, not the middle: a vendor payload's head (device, method) is the
        # same in every message, and the quarantine keeps identical payloads once.
        return payload[:-1]
    if reason == "invalid_payload":
        return b"[" + payload + b"]"
    if reason == "oversized":
        return payload + b" " * (max_payload_bytes + 1024 - len(payload))
    return payload


class DeviceSplitter:
    """The hook in `Gateways.batches`: messages of device gateways become device
    messages; canonical ones pass through."""

    def __init__(self, park: Park, max_payload_bytes: int) -> None:
        self.targets = targets(park)
        self.native_only = native_only(park)
        self.max_payload_bytes = max_payload_bytes

    def split(
        self,
        messages: list[Message],
        next_seq: Callable[[], int],
        encode: Callable[[Message], bytes],
    ) -> list[Message]:
        if not self.targets:
            return messages
        out: list[Message] = []
        parts_of: dict[int, list[Message]] = {}
        rest_of: dict[int, Message] = {}
        for m in messages:
            canonical, mapped = self._sort(m)
            if not mapped and len(canonical) == len(m.items):
                out.append(m)
                rest_of[id(m)] = m
                continue
            if canonical:
                rest = replace(m, items=canonical, payload=b"")
                rest.payload = spoil(encode(rest), m.reason, self.max_payload_bytes)
                if m.original is not None:
                    rest.original = rest_of.get(id(m.original))
                rest_of[id(m)] = rest
                out.append(rest)
            originals = parts_of.get(id(m.original), []) if m.original is not None else []
            parts: list[Message] = []
            for n, item in enumerate(mapped):
                first = not canonical and not parts
                part = self._device_message(m, item, m.seq if first else next_seq(), first)
                if n < len(originals):
                    part.original = originals[n]
                parts.append(part)
            parts_of[id(m)] = parts
            out += parts
        return out

    def _sort(self, m: Message) -> tuple[list[Item], list[Item]]:
        """(items for the canonical batch, items for device messages); a native-only
        gateway's unmapped readings and names of meters no device has are dropped."""
        canonical_ok = m.gateway not in self.native_only
        canonical: list[Item] = []
        mapped: list[Item] = []
        for item in m.items:
            if item.fault not in UNSENDABLE and item.meter in self.targets:
                mapped.append(item)
            elif canonical_ok:
                canonical.append(item)
        return canonical, mapped

    def _device_message(self, m: Message, item: Item, seq: int, first: bool) -> Message:
        target = self.targets[item.meter]
        value = item.value
        if target.device_unit != target.meter_unit:
            sent = convert(value, target.meter_unit, target.device_unit)
            value = convert(sent, target.device_unit, target.meter_unit)
        else:
            sent = value
        copy = replace(item, value=value)
        doc = device_doc(target, copy, sent)
        payload = json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()
        payload = spoil(payload, m.reason, self.max_payload_bytes)
        fault = m.fault if first else None  # counted once per canonical message
        return replace(
            m,
            seq=seq,
            gateway=target.client,
            topic=target.topic,
            items=[copy],
            fault=fault,
            original=None,
            extra={},
            payload=payload,
        )
