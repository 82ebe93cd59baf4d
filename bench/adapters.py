"""Diagnostics for device payloads (SPEC section 3.1), kept out of bench/ingest/.

`canonical_park` lets the ingest benchmark keep measuring the canonical paths on
the demo park, whose LoRaWAN and Neuron gateways may publish nothing canonical;
`run_adapters` measures each protocol's parse rate (adapter plus the canonical
reading checks), in this process, on payloads the simulator's encoders produce.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from core.park.device_store import device_rows
from core.park.loader import parse_park
from core.park.models import Park
from ingest.adapters.base import routes_by_topic
from ingest.devices import parse_device_message
from ingest.parse import MeterInfo
from simulator.messages import Item
from simulator.protocols import device_doc, targets


def canonical_park(park: Park) -> Park:
    """The same park with every gateway publishing the canonical JSON."""
    data = park.model_dump(mode="json")
    for site in data["sites"]:
        for ent in site["enterprises"]:
            ent["protocol"], ent["devices"] = "canonical", []
    return parse_park(data)


def run_adapters(park: Park, messages: int, start: datetime) -> dict[str, Any]:
    """Messages per second through `parse_device_message`, per protocol."""
    routes = routes_by_topic(device_rows(park))
    meters = {
        m.id: MeterInfo(m.id, s.id, m.unit, m.commissioned_at, True, e.gateway_id)
        for s, e, m in park.meters()
    }
    by_protocol: dict[str, list[Any]] = {}
    for target in targets(park).values():
        by_protocol.setdefault(target.protocol.value, []).append(target)
    now = datetime.now(UTC)
    base = int(start.timestamp())
    out: dict[str, Any] = {}
    for protocol, group in sorted(by_protocol.items()):
        payloads = []
        for k in range(messages):
            target = group[k % len(group)]
            item = Item(target.device.meter, base + k, 1000.0 + k)
            doc = device_doc(target, item, item.value)
            payloads.append((target.topic, json.dumps(doc, separators=(",", ":")).encode()))
        t0 = time.perf_counter()
        rejected = 0
        for topic, payload in payloads:
            parsed = parse_device_message(topic, payload, routes.get(topic), meters, now)
            rejected += len(parsed.rejections)
        elapsed = time.perf_counter() - t0
        out[protocol] = {
            "messages": messages,
            "rejected": rejected,
            "messages_per_s": messages / elapsed,
        }
    return out
