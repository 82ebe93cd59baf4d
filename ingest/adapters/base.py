"""What every device adapter shares: the route of a mapped field, and the result.

An adapter turns one vendor payload into canonical reading items (the dict a
gateway batch carries: meter, ts, value, unit), so every reading then passes the
same checks as a canonical one (ingest/parse.py: ownership, unit, skew,
commissioning). A field the payload lacks or reports as failed becomes a rejection
naming the field; a payload unusable as a whole raises `AdapterError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.parse import Reason


@dataclass(frozen=True, slots=True)
class DeviceRoute:
    """One mapped device field (a row of `gateway_devices`)."""

    topic: str
    protocol: str
    device: str
    field: str
    meter_id: str
    gateway_id: str
    site_id: str
    unit: str | None = None
    timezone: str | None = None


def routes_by_topic(rows: Iterable[Mapping[Any, Any]]) -> dict[str, tuple[DeviceRoute, ...]]:
    """`gateway_devices` rows (or `core.park.device_store.device_rows`) by topic."""
    out: dict[str, list[DeviceRoute]] = {}
    for r in rows:
        route = DeviceRoute(
            r["topic"], r["protocol"], r["device"], r["field"], r["meter_id"],
            r["gateway_id"], r["site_id"], r["unit"], r["timezone"],
        )  # fmt: skip
        out.setdefault(route.topic, []).append(route)
    return {topic: tuple(fields) for topic, fields in out.items()}


@dataclass(frozen=True, slots=True)
class FieldRejection:
    route: DeviceRoute
    reason: Reason
    detail: str


@dataclass(slots=True)
class Adapted:
    items: list[tuple[DeviceRoute, dict[str, Any]]]
    rejections: list[FieldRejection]


class AdapterError(Exception):
    """The whole payload is unusable; quarantined with this reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


Adapter = Callable[[str, dict[str, Any], Sequence[DeviceRoute]], Adapted]


def lookup(doc: object, path: str) -> object:
    """`a.b.1` in nested objects and lists; None when absent."""
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def item(route: DeviceRoute, ts: object, value: object, unit: str | None) -> dict[str, Any]:
    return {"meter": route.meter_id, "ts": ts, "value": value, "unit": unit}


def read_fields(
    doc: object, routes: Sequence[DeviceRoute], ts: object, unit: str | None, where: str = ""
) -> Adapted:
    """Each route's field of `doc` as a reading in `unit` (the route's own when None),
    or a `missing_field` rejection naming the field (`where` says inside what)."""
    out = Adapted([], [])
    for route in routes:
        value = lookup(doc, route.field)
        if value is None:
            detail = f"{where}{route.field} is missing"
            out.rejections.append(FieldRejection(route, Reason.missing_field, detail))
        else:
            out.items.append((route, item(route, ts, value, unit or route.unit)))
    return out
