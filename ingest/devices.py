"""A message on a device protocol's native topic to readings or rejections. Pure.

The topic names the device (the broker's ACL lets only its gateway publish it);
the routes say which meters its fields feed. Every reading then passes the same
checks as a canonical gateway batch, the ownership rule included: the gateway is
the one of the enterprise that declared the device, so a device mapped to another
enterprise's meter is quarantined `foreign_meter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ingest.adapters import ADAPTERS
from ingest.adapters.base import AdapterError, DeviceRoute
from ingest.parse import (
    Limits,
    MeterInfo,
    Parsed,
    Reason,
    Rejection,
    _reading,
    _Reject,
    decode_document,
    parse_message,
)

DEFAULT_LIMITS = Limits()


def parse_device_message(
    topic: str,
    payload: bytes,
    routes: Sequence[DeviceRoute] | None,
    meters: dict[str, MeterInfo],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> Parsed:
    if not routes:
        detail = "no device of the park file publishes on this topic"
        return Parsed(None, rejections=[Rejection(Reason.unknown_device, detail)])
    first = routes[0]
    out = Parsed(first.site_id)
    try:
        doc = decode_document(payload, limits)
        adapted = ADAPTERS[first.protocol](topic, doc, routes)
    except _Reject as rej:
        out.rejections.append(Rejection(rej.reason, rej.detail))
        return out
    except AdapterError as err:
        out.rejections.append(Rejection(err.reason, f"{first.protocol}: {err.detail}"))
        return out
    for rejected in adapted.rejections:
        known = rejected.route.meter_id if rejected.route.meter_id in meters else None
        out.rejections.append(Rejection(rejected.reason, rejected.detail, known))
    for route, reading in adapted.items:
        try:
            out.readings.append(
                _reading(
                    reading, route.meter_id, route.site_id, route.gateway_id, meters, limits, now
                )
            )
        except _Reject as rej:
            known = route.meter_id if route.meter_id in meters else None
            out.rejections.append(Rejection(rej.reason, f"{route.field}: {rej.detail}", known))
    return out


def parse_any(
    topic: str,
    payload: bytes,
    prefix: str,
    meters: dict[str, MeterInfo],
    routes: Mapping[str, Sequence[DeviceRoute]],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> Parsed:
    """Canonical topics under the prefix, device topics by their route."""
    if topic.startswith(prefix + "/"):
        return parse_message(topic, payload, prefix, meters, now, limits)
    return parse_device_message(topic, payload, routes.get(topic), meters, now, limits)
