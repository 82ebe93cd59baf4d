"""Shelly Gen2+ energy meters: `NotifyStatus` / `NotifyFullStatus` frames on
`{topic_prefix}/events/rpc`, totals of `emdata:N` (Pro 3EM: `total_act`,
`a_total_act_energy`, ...) and `em1data:N` (Pro EM: `total_act_energy`) in Wh,
`params.ts` in Unix seconds.

A frame carries only the components that changed, so a mapped total that is
absent is simply not in this frame (no rejection), and frames of other methods
(`NotifyEvent`) carry no totals. `EMData.ResetCounters` restarts a total at zero:
it is stored as sent, and the engine reads the drop as a counter reset (a dip
that does not recover), not as a glitch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.adapters.base import Adapted, AdapterError, DeviceRoute, item, lookup
from ingest.parse import Reason

STATUS_METHODS = frozenset({"NotifyStatus", "NotifyFullStatus"})


def adapt(topic: str, doc: dict[str, Any], routes: Sequence[DeviceRoute]) -> Adapted:
    out = Adapted([], [])
    method = doc.get("method")
    if not isinstance(method, str):
        raise AdapterError(Reason.invalid_payload, "method is missing: not a Gen2 notification")
    if method not in STATUS_METHODS:
        return out
    params = doc.get("params")
    if not isinstance(params, dict):
        raise AdapterError(Reason.invalid_payload, "params is missing or not an object")
    ts = params.get("ts")
    for route in routes:
        value = lookup(params, route.field)
        if value is not None:
            out.items.append((route, item(route, ts, value, "Wh")))
    return out
