"""Tasmota telemetry (`tele/{topic}/SENSOR`): `ENERGY.Total` in kWh (a list on
multi-channel devices: `ENERGY.Total.1`), `Time` in the device's local time without
an offset. The zone comes from the park file (the device's, else its site's), so
the stored instant is exact; on a DST fold the earlier instant is taken (a device
that must avoid it can be set to UTC with `Timezone 0`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ingest.adapters.base import Adapted, AdapterError, DeviceRoute, read_fields
from ingest.parse import Reason


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(raw: object, zone: str) -> str:
    """Tasmota's `Time` as RFC 3339 with the zone's offset at that moment."""
    if not isinstance(raw, str):
        raise AdapterError(Reason.invalid_timestamp, "Time is missing or not a string")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise AdapterError(Reason.invalid_timestamp, f"Time {raw[:64]!r} is not ISO 8601") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_zone(zone))
    return ts.isoformat()


def adapt(topic: str, doc: dict[str, Any], routes: Sequence[DeviceRoute]) -> Adapted:
    zone = routes[0].timezone or "UTC"
    ts = local_time(doc.get("Time"), zone)
    return read_fields(doc, routes, ts, "kWh")
