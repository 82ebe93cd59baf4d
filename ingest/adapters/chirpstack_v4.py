"""ChirpStack v4 uplink events (`application/{application_id}/device/{dev_eui}/event/up`).

The reading is in the codec's decoded `object`; without a codec ChirpStack sends
only the raw `data`, which this service cannot interpret (`codec_missing`). The
timestamp is the event's `time`. ChirpStack publishes one event per
`deduplicationId` with one `time`, so a republished event repeats (meter, ts,
value) and is stored once: a duplicate, counted, never a second reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.adapters.base import Adapted, AdapterError, DeviceRoute, read_fields
from ingest.parse import Reason


def adapt(topic: str, doc: dict[str, Any], routes: Sequence[DeviceRoute]) -> Adapted:
    info = doc.get("deviceInfo")
    dev_eui = info.get("devEui") if isinstance(info, dict) else None
    if not isinstance(dev_eui, str) or dev_eui.lower() != routes[0].device.lower():
        raise AdapterError(
            Reason.invalid_payload, f"deviceInfo.devEui {dev_eui!r} is not the topic's device"
        )
    obj = doc.get("object")
    if obj is None:
        raise AdapterError(
            Reason.codec_missing,
            "no decoded `object`: configure a codec in the device profile",
        )
    if not isinstance(obj, dict):
        raise AdapterError(Reason.invalid_payload, "object is not a JSON object")
    return read_fields(obj, routes, doc.get("time"), None, where="object.")
