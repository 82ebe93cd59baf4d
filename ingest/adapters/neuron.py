"""EMQX Neuron's MQTT north app, values format, on `/neuron/{app}/{node}/{group}`
(the default upload topic since Neuron 2.4, with the app named after the gateway):
`timestamp` in milliseconds, `node` and `group` naming the south device and tag
group, `values` holding the tags read, `errors` the tags that failed with their code.

A mapped tag in `errors` is quarantined as `device_error` with its code (the
Modbus read failed: no value to store, and the gap shows as missing data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ingest.adapters.base import Adapted, AdapterError, DeviceRoute, FieldRejection, item
from ingest.parse import Reason


def adapt(topic: str, doc: dict[str, Any], routes: Sequence[DeviceRoute]) -> Adapted:
    source = f"{doc.get('node')}/{doc.get('group')}"
    if source != routes[0].device:
        raise AdapterError(
            Reason.invalid_payload, f"node/group {source[:130]!r} is not the topic's device"
        )
    stamp = doc.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        raise AdapterError(Reason.invalid_timestamp, "timestamp (ms) is missing or not a number")
    values = doc.get("values")
    errors = doc.get("errors")
    values = values if isinstance(values, dict) else {}
    errors = errors if isinstance(errors, dict) else {}
    out = Adapted([], [])
    for route in routes:
        if route.field in values:
            out.items.append((route, item(route, stamp / 1000, values[route.field], route.unit)))
        elif route.field in errors:
            detail = f"tag {route.field!r} read failed with error {errors[route.field]!r}"
            out.rejections.append(FieldRejection(route, Reason.device_error, detail))
        else:
            detail = f"tag {route.field!r} is in neither values nor errors"
            out.rejections.append(FieldRejection(route, Reason.missing_field, detail))
    return out
