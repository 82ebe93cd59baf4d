"""MQTT message to readings or quarantine reasons (SPEC section 3). Pure: no I/O.

Every message ends as stored readings and/or rejections, so nothing is lost
silently: a gateway batch keeps its good readings while its bad ones go to the
quarantine with their reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from json.scanner import make_scanner
from typing import Any

from core import topics
from core.broker.limits import DEFAULT_MAX_PAYLOAD_BYTES
from core.units import UnitError, convert


class Reason(StrEnum):
    oversized = "oversized"
    not_json = "not_json"
    invalid_payload = "invalid_payload"
    invalid_timestamp = "invalid_timestamp"
    non_finite_value = "non_finite_value"
    negative_value = "negative_value"
    unknown_meter = "unknown_meter"
    inactive_meter = "inactive_meter"
    wrong_site = "wrong_site"
    foreign_meter = "foreign_meter"
    unit_mismatch = "unit_mismatch"
    future_timestamp = "future_timestamp"
    before_commissioning = "before_commissioning"
    store_error = "store_error"
    # Device payloads (SPEC section 3.1, ingest/adapters/).
    unknown_device = "unknown_device"
    codec_missing = "codec_missing"
    missing_field = "missing_field"
    device_error = "device_error"


@dataclass(frozen=True, slots=True)
class MeterInfo:
    id: str
    site_id: str
    unit: str
    commissioned_at: datetime
    active: bool = True
    # The gateway of the meter's enterprise: the only one whose batches may carry it.
    gateway_id: str | None = None


@dataclass(slots=True)
class Reading:
    """Not frozen: one is made per message on the MQTT thread, and a frozen dataclass
    (or a NamedTuple) takes three times as long to build. Nothing changes one."""

    meter_id: str
    ts: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str
    meter_id: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a gateway batch stands in its gateway's numbering (SPEC section 3,
    end-to-end delivery): `seq` counts messages from 1 within an `epoch`."""

    gateway: str
    epoch: str
    seq: int


@dataclass(slots=True)
class Parsed:
    """One message's outcome; `site_id` comes from the topic."""

    site_id: str | None
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    position: Position | None = None


MAX_EPOCH_CHARS = 64


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_future_skew: timedelta = timedelta(minutes=5)


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


# typeshed wants a scanner as the context; the runtime reads the decoder's hooks.
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _decode(payload: bytes) -> Any:
    """NaN and Infinity literals (which Python's json accepts) decode to floats here
    and are refused where they matter (value, ts), reading by reading, so one bad
    reading does not take the rest of its gateway batch with it.

    A compact UTF-8 document (what gateways send) goes straight to json's C scanner;
    `json.loads` on bytes first guesses the encoding and strips whitespace with
    regular expressions, a fifth of a single reading's parse. Anything else (other
    encodings, surrounding whitespace, errors) takes `json.loads`, so results and
    error texts are exactly its own."""
    try:
        text = payload.decode()
        doc, end = _scan(text, 0)
        if end == len(text):
            return doc
    except (ValueError, StopIteration, RecursionError):
        pass
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise _Reject(Reason.not_json, str(exc)[:200]) from None


def decode_document(payload: bytes, limits: Limits) -> dict[str, Any]:
    """The payload as a JSON object within the size limit, for every topic form."""
    if len(payload) > limits.max_payload_bytes:
        raise _Reject(
            Reason.oversized,
            f"{len(payload)} bytes is over the limit of {limits.max_payload_bytes}",
        )
    doc = _decode(payload)
    if not isinstance(doc, dict):
        raise _Reject(Reason.invalid_payload, "payload is not a JSON object")
    return doc


# Cached: a park's topics are a fixed set (one per meter and gateway), and a broker
# ACL admits no others, so the split is done once per topic, not per message.
parse_topic = lru_cache(maxsize=65_536)(topics.split_data)


def parse_timestamp(raw: object) -> datetime:
    if isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise _Reject(Reason.invalid_timestamp, f"ts {raw[:64]!r} is not RFC 3339") from None
        if ts.tzinfo is None or len(raw) < 16:
            raise _Reject(Reason.invalid_timestamp, f"ts {raw[:64]!r} has no UTC offset")
        try:
            return ts.astimezone(UTC)
        except OverflowError:
            raise _Reject(Reason.invalid_timestamp, f"ts {raw[:64]!r} is out of range") from None
    if isinstance(raw, bool):
        raise _Reject(Reason.invalid_timestamp, "ts is a boolean")
    if isinstance(raw, int | float):
        try:
            if not math.isfinite(raw):
                raise _Reject(Reason.invalid_timestamp, f"ts {raw!r} is not finite")
            return datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise _Reject(Reason.invalid_timestamp, f"ts {raw!r} is out of range") from None
    raise _Reject(Reason.invalid_timestamp, "ts is missing or not a string or number")


def parse_value(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Reject(Reason.invalid_payload, "value is missing or not a number")
    try:
        value = float(raw)
    except OverflowError:
        raise _Reject(Reason.non_finite_value, "value overflows a double") from None
    if not math.isfinite(value):
        raise _Reject(Reason.non_finite_value, f"value {value!r} is not finite")
    if value < 0:
        raise _Reject(Reason.negative_value, f"value {value!r} is negative")
    return value


def check_owner(meter: MeterInfo, topic_site: str, gateway_id: str | None) -> None:
    """The one ownership rule (SPEC section 3), for every path that turns a message
    into readings: a meter is written only under its own site and, on a gateway's
    topic, only by its own enterprise's gateway, whatever the broker's ACL let
    through. `gateway_id` is None for the single-reading topic, which names the
    meter itself (the ACL gives each gateway only its own meters' topics)."""
    if meter.site_id != topic_site:
        raise _Reject(Reason.wrong_site, f"meter {meter.id!r} belongs to site {meter.site_id!r}")
    if gateway_id is not None and meter.gateway_id != gateway_id:
        raise _Reject(
            Reason.foreign_meter,
            f"meter {meter.id!r} belongs to another enterprise than gateway {gateway_id[:64]!r}",
        )


def _reading(
    item: dict[str, Any],
    meter_id: object,
    topic_site: str,
    gateway_id: str | None,
    meters: dict[str, MeterInfo],
    limits: Limits,
    now: datetime,
) -> Reading:
    if not isinstance(meter_id, str):
        raise _Reject(Reason.invalid_payload, "meter is missing or not a string")
    meter = meters.get(meter_id)
    if meter is None:
        raise _Reject(Reason.unknown_meter, f"meter {meter_id[:64]!r} is not registered")
    check_owner(meter, topic_site, gateway_id)
    if not meter.active:
        raise _Reject(Reason.inactive_meter, f"meter {meter_id!r} is deactivated")
    ts = parse_timestamp(item.get("ts"))
    value = parse_value(item.get("value"))
    unit = item.get("unit")
    if unit is not None and unit != meter.unit:
        if not isinstance(unit, str):
            raise _Reject(Reason.unit_mismatch, "unit is not a string")
        try:
            value = convert(value, unit, meter.unit)
        except UnitError as exc:
            raise _Reject(Reason.unit_mismatch, f"{exc} (meter unit {meter.unit!r})") from None
        if not math.isfinite(value):
            raise _Reject(Reason.non_finite_value, f"value overflows in {meter.unit}")
    if ts > now + limits.max_future_skew:
        raise _Reject(Reason.future_timestamp, f"ts {ts.isoformat()} is in the future")
    if ts < meter.commissioned_at:
        raise _Reject(
            Reason.before_commissioning,
            f"ts {ts.isoformat()} is before commissioning {meter.commissioned_at.isoformat()}",
        )
    return Reading(meter_id, ts, value)


def parse_position(doc: dict[str, Any], gateway: str) -> Position | None:
    """`seq` and `epoch` of a batch, when the gateway numbers its messages."""
    seq = doc.get("seq")
    epoch = doc.get("epoch", "")
    if seq is None and "epoch" not in doc:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**63:
        raise _Reject(Reason.invalid_payload, "seq is not an integer from 1 up")
    if not isinstance(epoch, str) or len(epoch) > MAX_EPOCH_CHARS:
        raise _Reject(
            Reason.invalid_payload, f"epoch is not a string of at most {MAX_EPOCH_CHARS} chars"
        )
    return Position(gateway, epoch, seq)


def parse_message(
    topic: str,
    payload: bytes,
    prefix: str,
    meters: dict[str, MeterInfo],
    now: datetime,
    limits: Limits = Limits(),
) -> Parsed:
    route = parse_topic(topic, prefix)
    if route is None:
        return Parsed(None, rejections=[Rejection(Reason.invalid_payload, "not a data topic")])
    site, kind, ident = route
    out = Parsed(site)
    try:
        doc = decode_document(payload, limits)
        if kind == "meters":
            out.readings.append(_reading(doc, ident, site, None, meters, limits, now))
            return out
        out.position = parse_position(doc, ident)
        items = doc.get("readings")
        if not isinstance(items, list) or not items:
            raise _Reject(Reason.invalid_payload, "readings is missing, empty or not a list")
    except _Reject as rej:
        meter_id = ident if kind == "meters" else None
        out.rejections.append(Rejection(rej.reason, rej.detail, meter_id))
        return out
    for index, item in enumerate(items):
        meter_id = item.get("meter") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict):
                raise _Reject(Reason.invalid_payload, "not a JSON object")
            out.readings.append(_reading(item, meter_id, site, ident, meters, limits, now))
        except _Reject as rej:
            known = meter_id if isinstance(meter_id, str) and meter_id in meters else None
            out.rejections.append(Rejection(rej.reason, f"readings[{index}]: {rej.detail}", known))
    return out
