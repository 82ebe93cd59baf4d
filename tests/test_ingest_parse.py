"""Unit tests of the pure MQTT message parser (SPEC section 3): no database, no broker."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.broker.limits import DEFAULT_MAX_PAYLOAD_BYTES
from ingest.parse import Limits, MeterInfo, Parsed, Reading, Reason, Rejection, parse_message

PREFIX = "parks"
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
COMMISSIONED = datetime(2025, 1, 1, tzinfo=UTC)
SKEW = Limits().max_future_skew

E1 = "NCK-E-001"  # kWh
SINGLE = f"parks/NCK/meters/{E1}"
GATEWAY = "parks/NCK/gateways/gw-1"
# 2026-01-05T08:00:00+07:00, the SPEC's example instant.
SPEC_TS = 1767574800
SPEC_INSTANT = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)

METERS: dict[str, MeterInfo] = {
    m.id: m
    for m in (
        MeterInfo(E1, "NCK", "kWh", COMMISSIONED, gateway_id="gw-1"),
        MeterInfo("NCK-E-002", "NCK", "kWh", COMMISSIONED, gateway_id="gw-1"),
        MeterInfo("NCK-E-WH", "NCK", "Wh", COMMISSIONED, gateway_id="gw-1"),
        MeterInfo("NCK-E-MWH", "NCK", "MWh", COMMISSIONED, gateway_id="gw-1"),
        MeterInfo("NCK-W-001", "NCK", "m3", COMMISSIONED, gateway_id="gw-1"),
        MeterInfo("NCK-W-L", "NCK", "L", COMMISSIONED, gateway_id="gw-1"),
        MeterInfo("NCK-E-OLD", "NCK", "kWh", COMMISSIONED, active=False, gateway_id="gw-1"),
        MeterInfo("NCK-E-T2", "NCK", "kWh", COMMISSIONED, gateway_id="gw-2"),
        MeterInfo("DC-E-001", "DEEPC", "kWh", COMMISSIONED, gateway_id="dc-gw"),
    )
}
ACTIVE_NCK = sorted(
    m.id for m in METERS.values() if m.site_id == "NCK" and m.active and m.gateway_id == "gw-1"
)


def encode(doc: object) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def parse(
    topic: str,
    payload: bytes | object,
    *,
    prefix: str = PREFIX,
    now: datetime = NOW,
    limits: Limits | None = None,
) -> Parsed:
    raw = payload if isinstance(payload, bytes) else encode(payload)
    return parse_message(topic, raw, prefix, METERS, now, limits or Limits())


def single(doc: bytes | object, meter: str = E1, **kwargs: Any) -> Parsed:
    return parse(f"parks/NCK/meters/{meter}", doc, **kwargs)


def only_reading(parsed: Parsed) -> Reading:
    assert parsed.rejections == []
    assert len(parsed.readings) == 1
    reading = parsed.readings[0]
    assert reading.ts.tzinfo is UTC
    return reading


def only_rejection(parsed: Parsed) -> Rejection:
    assert parsed.readings == []
    assert len(parsed.rejections) == 1
    return parsed.rejections[0]


def assert_rejected(parsed: Parsed, reason: Reason, meter_id: str | None = E1) -> Rejection:
    rejection = only_rejection(parsed)
    assert rejection.reason is reason, rejection
    assert rejection.meter_id == meter_id
    assert rejection.detail
    return rejection


# --- topics -------------------------------------------------------------------------------


def test_single_reading_topic_spec_example() -> None:
    parsed = single({"ts": "2026-01-05T08:00:00+07:00", "value": 1532.25, "unit": "kWh"})
    assert parsed == Parsed("NCK", [Reading(E1, SPEC_INSTANT, 1532.25)], [])
    assert parsed.readings[0].ts.tzinfo is UTC


def test_gateway_batch_topic_spec_example() -> None:
    doc = {
        "readings": [
            {"meter": E1, "ts": SPEC_TS, "value": 1532.25, "unit": "kWh"},
            {"meter": "NCK-W-001", "ts": "2026-01-05T08:00:00+07:00", "value": 88.5},
        ]
    }
    parsed = parse(GATEWAY, doc)
    assert parsed == Parsed(
        "NCK",
        [Reading(E1, SPEC_INSTANT, 1532.25), Reading("NCK-W-001", SPEC_INSTANT, 88.5)],
        [],
    )


def test_multi_level_prefix() -> None:
    doc = {"ts": SPEC_TS, "value": 7}
    batch = {"readings": [{"meter": E1, "ts": SPEC_TS, "value": 7}]}
    expected = Parsed("NCK", [Reading(E1, SPEC_INSTANT, 7.0)], [])
    assert parse(f"hp/parks/NCK/meters/{E1}", doc, prefix="hp/parks") == expected
    assert parse("hp/parks/NCK/gateways/gw-1", batch, prefix="hp/parks") == expected
    # The bare prefix is not the configured one any more, nor is a partial one.
    not_data = Parsed(None, [], [Rejection(Reason.invalid_payload, "not a data topic")])
    assert parse(SINGLE, doc, prefix="hp/parks") == not_data
    assert parse(f"hp/NCK/meters/{E1}", doc, prefix="hp/parks") == not_data
    assert parse(f"xx/parks/NCK/meters/{E1}", doc, prefix="hp/parks") == not_data


@pytest.mark.parametrize(
    "topic",
    [
        "parks/NCK/emissions/live",
        "parks/NCK/alerts/drift",
        "parks/NCK/meter/NCK-E-001",
        "parks/NCK/gateway/gw-1",
        "parks/NCK/meters",
        "parks/NCK/meters/",
        "parks//meters/NCK-E-001",
        "parks/NCK/gateways/",
        "parks/NCK/meters/NCK-E-001/extra",
        "parks/NCK",
        "parks",
        "",
        "other/NCK/meters/NCK-E-001",
        "Parks/NCK/meters/NCK-E-001",
        "/parks/NCK/meters/NCK-E-001",
        "hp/parks/NCK/meters/NCK-E-001",
    ],
)
def test_non_data_topics(topic: str) -> None:
    parsed = parse(topic, {"ts": SPEC_TS, "value": 1})
    assert parsed == Parsed(None, [], [Rejection(Reason.invalid_payload, "not a data topic")])


# --- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-01-05T08:00:00+07:00", SPEC_INSTANT),
        ("2026-01-05T01:00:00Z", SPEC_INSTANT),
        ("2026-01-05T01:00:00+00:00", SPEC_INSTANT),
        ("2026-01-05T01:00:00-00:00", SPEC_INSTANT),
        ("2026-01-04T21:30:00-03:30", SPEC_INSTANT),
        ("2026-01-05T06:45:00+05:45", SPEC_INSTANT),
        ("2026-01-05T14:00:00+13:00", SPEC_INSTANT),
        ("2026-01-04T13:00:00-12:00", SPEC_INSTANT),
        ("2026-01-05T08:00:00.25+07:00", SPEC_INSTANT.replace(microsecond=250_000)),
        ("2026-01-05T01:00:00.123456Z", SPEC_INSTANT.replace(microsecond=123_456)),
        ("2026-01-04T21:30:00.5-03:30", SPEC_INSTANT.replace(microsecond=500_000)),
        ("2025-12-31T21:00:00-05:00", datetime(2026, 1, 1, 2, 0, tzinfo=UTC)),
        ("2026-01-01T06:59:59+07:00", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (SPEC_TS, SPEC_INSTANT),
        (1767571200, datetime(2026, 1, 5, 0, 0, tzinfo=UTC)),
        (1767574800.0, SPEC_INSTANT),
        (1767574800.25, SPEC_INSTANT.replace(microsecond=250_000)),
        (1767574799.5, datetime(2026, 1, 5, 0, 59, 59, 500_000, tzinfo=UTC)),
    ],
)
def test_timestamp_forms_become_utc(ts: object, expected: datetime) -> None:
    reading = only_reading(single({"ts": ts, "value": 1}))
    assert reading.ts == expected
    assert reading.ts.replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    "ts",
    [
        "2026-01-05T08:00:00",  # no offset
        "2026-01-05T08:00:00.250",  # no offset, fractional
        "2026-01-05",  # date only
        "2026-01-05+07:00",  # date only, offset-looking tail
        "2026-01",
        "garbage",
        "",
        "1767574800",  # a number in a string is not RFC 3339
        "tomorrow 08:00",
        "2026-13-05T08:00:00Z",
        "2026-02-30T08:00:00Z",
        "2026-01-05T25:00:00+07:00",
        "2026-01-05T08:00:00+25:00",
        "T08:00:00+07:00",
        True,
        False,
        None,
        [SPEC_TS],
        {"unix": SPEC_TS},
        10**20,
        -(10**20),
        1e20,
        -1e20,
        253402300800,  # 10000-01-01T00:00:00Z
    ],
)
def test_timestamp_refused(ts: object) -> None:
    assert_rejected(single({"ts": ts, "value": 1}), Reason.invalid_timestamp)


def test_timestamp_missing() -> None:
    assert_rejected(single({"value": 1}), Reason.invalid_timestamp)


@pytest.mark.parametrize(
    "literal",
    [
        b"1e400",  # float overflow: inf
        b"-1e400",
        b"1" + b"0" * 399,  # a 400-digit integer
        b"-1" + b"0" * 399,
    ],
)
def test_timestamp_non_finite_or_huge_numbers_refused(literal: bytes) -> None:
    payload = b'{"ts": ' + literal + b', "value": 1}'
    assert_rejected(single(payload), Reason.invalid_timestamp)


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00+07:00",  # its UTC instant is in year 0
        "9999-12-31T23:59:59-03:00",  # its UTC instant is in year 10000
    ],
)
def test_timestamp_out_of_utc_range_is_refused_not_raised(ts: str) -> None:
    """Valid syntax whose UTC instant datetime cannot hold: rejected, not an exception."""
    assert_rejected(single({"ts": ts, "value": 1}), Reason.invalid_timestamp)


def test_timestamp_extremes_that_fit_go_to_the_time_checks() -> None:
    assert_rejected(single({"ts": "0001-01-01T00:00:00Z", "value": 1}), Reason.before_commissioning)
    assert_rejected(single({"ts": "9999-12-31T23:59:59Z", "value": 1}), Reason.future_timestamp)
    assert_rejected(single({"ts": 0, "value": 1}), Reason.before_commissioning)
    assert_rejected(single({"ts": -86400.5, "value": 1}), Reason.before_commissioning)


# --- units --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meter", "value", "unit", "expected"),
    [
        (E1, 1532.25, "kWh", 1532.25),
        (E1, 1532250, "Wh", 1532.25),
        (E1, 1500, "Wh", 1.5),
        (E1, 2.5, "MWh", 2500.0),
        (E1, 3, "MWh", 3000.0),
        ("NCK-E-WH", 2, "kWh", 2000.0),
        ("NCK-E-WH", 0.5, "MWh", 500_000.0),
        ("NCK-E-MWH", 2500, "kWh", 2.5),
        ("NCK-E-MWH", 2_500_000, "Wh", 2.5),
        ("NCK-W-001", 1500, "L", 1.5),
        ("NCK-W-001", 2.25, "m3", 2.25),
        ("NCK-W-L", 1.5, "m3", 1500.0),
        ("NCK-W-L", 12, "L", 12.0),
    ],
)
def test_unit_converts_to_meter_unit(meter: str, value: float, unit: str, expected: float) -> None:
    reading = only_reading(single({"ts": SPEC_TS, "value": value, "unit": unit}, meter))
    assert reading == Reading(meter, SPEC_INSTANT, expected)
    assert type(reading.value) is float


@pytest.mark.parametrize(
    ("meter", "value", "unit", "expected"),
    [
        (E1, 9, "Wh", 9 / 1000),
        (E1, 13, "Wh", 13 / 1000),
        (E1, 1532251, "Wh", 1532251 / 1000),
        ("NCK-W-001", 9, "L", 9 / 1000),
        ("NCK-E-MWH", 5, "Wh", 5 / 1_000_000),
    ],
)
def test_unit_conversion_is_correctly_rounded(
    meter: str, value: int, unit: str, expected: float
) -> None:
    """9 Wh is the double nearest to 0.009 kWh, not 9 * 0.001 = 0.009000000000000001."""
    reading = only_reading(single({"ts": SPEC_TS, "value": value, "unit": unit}, meter))
    assert reading.value == expected


@pytest.mark.parametrize(
    "doc", [{"ts": SPEC_TS, "value": 42}, {"ts": SPEC_TS, "value": 42, "unit": None}]
)
def test_unit_omitted_means_meter_unit(doc: dict[str, object]) -> None:
    assert only_reading(single(doc, "NCK-E-WH")) == Reading("NCK-E-WH", SPEC_INSTANT, 42.0)


@pytest.mark.parametrize(
    ("meter", "unit"),
    [
        ("NCK-W-001", "kWh"),  # energy onto a volume meter
        (E1, "m3"),
        (E1, "L"),
        (E1, "kg"),
        (E1, "t"),
        (E1, "kwh"),  # units are case-sensitive
        (E1, "KWH"),
        (E1, "BTU"),
        (E1, "GJ"),
        (E1, ""),
        (E1, " kWh"),
        (E1, 1),
        (E1, True),
        (E1, ["kWh"]),
        (E1, {"unit": "kWh"}),
    ],
)
def test_unit_mismatch(meter: str, unit: object) -> None:
    parsed = single({"ts": SPEC_TS, "value": 5, "unit": unit}, meter)
    assert_rejected(parsed, Reason.unit_mismatch, meter)


def test_unit_conversion_overflow_is_non_finite() -> None:
    """1e308 MWh is 1e314 Wh: infinite after conversion, so it must not be stored."""
    parsed = single({"ts": SPEC_TS, "value": 1e308, "unit": "MWh"}, "NCK-E-WH")
    assert_rejected(parsed, Reason.non_finite_value, "NCK-E-WH")


# --- oversized and undecodable ------------------------------------------------------------


def _padded(doc: object, size: int) -> bytes:
    raw = encode(doc)
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize("limit", [100, 1000])
def test_oversized_boundary(limit: int) -> None:
    limits = Limits(max_payload_bytes=limit)
    doc = {"ts": SPEC_TS, "value": 1}
    at_limit = single(_padded(doc, limit), limits=limits)
    assert at_limit == Parsed("NCK", [Reading(E1, SPEC_INSTANT, 1.0)], [])
    over = single(_padded(doc, limit + 1), limits=limits)
    rejection = assert_rejected(over, Reason.oversized)
    assert rejection.detail == f"{limit + 1} bytes is over the limit of {limit}"
    batch = {"readings": [{"meter": E1, "ts": SPEC_TS, "value": 1}]}
    assert len(parse(GATEWAY, _padded(batch, limit), limits=limits).readings) == 1
    assert_rejected(
        parse(GATEWAY, _padded(batch, limit + 1), limits=limits), Reason.oversized, None
    )


def test_oversized_default_limit_checked_before_decoding() -> None:
    limit = Limits().max_payload_bytes
    assert limit == DEFAULT_MAX_PAYLOAD_BYTES == 1024 * 1024
    assert_rejected(single(b"\xff" * (limit + 1)), Reason.oversized)
    assert_rejected(single(_padded({"ts": SPEC_TS, "value": 1}, limit + 1)), Reason.oversized)
    assert only_reading(single(_padded({"ts": SPEC_TS, "value": 1}, limit))).value == 1.0


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b" ",
        b'{"ts": "\xff", "value": 1}',  # not UTF-8
        b'{"ts": 1767574800, "value": 1, "unit": "k\xc3\x28Wh"}',  # invalid UTF-8 sequence
        b'{"ts": "2026-01-05T08:00:00+07:00", "value": 15\xe9}',  # latin-1 byte
        b'{"ts": 1767574800, "value": 15',  # truncated
        b'{"ts": 1767574800, "value": ',
        b'{"ts": 1767574800, "value": 1}}',
        b'{"ts": 1767574800, "value": 1} trailing',
        b"{'ts': 1767574800, 'value': 1}",
        b'{ts: 1767574800, "value": 1}',
        b"ts=1767574800&value=1",
        b'{"value": 1,}',
        b'{"value": 0x10}',
        b'{"value": nan}',
        b"[" * 100_000,  # nesting too deep for the decoder
    ],
)
def test_not_json(payload: bytes) -> None:
    assert_rejected(single(payload), Reason.not_json)
    assert_rejected(parse(GATEWAY, payload), Reason.not_json, None)


# --- invalid payloads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        [{"ts": SPEC_TS, "value": 1}],  # top-level list
        [],
        "reading",
        1532.25,
        None,
        True,
        {"ts": SPEC_TS},  # value missing
        {"ts": SPEC_TS, "value": None},
        {"ts": SPEC_TS, "value": "1532.25"},  # a string value
        {"ts": SPEC_TS, "value": True},
        {"ts": SPEC_TS, "value": [1]},
        {"ts": SPEC_TS, "value": {"v": 1}},
    ],
)
def test_invalid_payload_single(doc: object) -> None:
    assert_rejected(single(doc), Reason.invalid_payload)


@pytest.mark.parametrize(
    "doc",
    [
        [{"meter": E1, "ts": SPEC_TS, "value": 1}],  # top-level list
        "readings",
        {},
        {"readings": []},  # empty list
        {"readings": None},
        {"readings": {"meter": E1, "ts": SPEC_TS, "value": 1}},
        {"readings": "x"},
        {"meter": E1, "ts": SPEC_TS, "value": 1},  # a single reading sent to the gateway topic
    ],
)
def test_invalid_payload_gateway(doc: object) -> None:
    assert_rejected(parse(GATEWAY, doc), Reason.invalid_payload, None)


@pytest.mark.parametrize("item", [1, "x", None, True, [], [{"meter": E1}]])
def test_gateway_item_not_an_object(item: object) -> None:
    rejection = assert_rejected(parse(GATEWAY, {"readings": [item]}), Reason.invalid_payload, None)
    assert rejection.detail.startswith("readings[0]: ")


@pytest.mark.parametrize("meter", [None, 5, ["NCK-E-001"], {"id": "NCK-E-001"}])
def test_gateway_item_meter_missing_or_not_a_string(meter: object) -> None:
    item: dict[str, object] = {"ts": SPEC_TS, "value": 1}
    if meter is not None:
        item["meter"] = meter
    rejection = assert_rejected(parse(GATEWAY, {"readings": [item]}), Reason.invalid_payload, None)
    assert rejection.detail.startswith("readings[0]: ")


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 399, b"-1" + b"0" * 399],
)
def test_non_finite_value_single(literal: bytes) -> None:
    payload = b'{"ts": 1767574800, "value": ' + literal + b', "unit": "kWh"}'
    assert_rejected(single(payload), Reason.non_finite_value)


@pytest.mark.parametrize(
    "literal",
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1" + b"0" * 399],
)
def test_non_finite_value_in_batch_keeps_the_rest(literal: bytes) -> None:
    """SPEC: an unusable reading is quarantined and the rest of a batch is still stored."""
    payload = (
        b'{"readings": ['
        b'{"meter": "NCK-E-001", "ts": 1767574800, "value": 10},'
        b'{"meter": "NCK-E-002", "ts": 1767574800, "value": ' + literal + b"},"
        b'{"meter": "NCK-W-001", "ts": 1767574800, "value": 3}'
        b"]}"
    )
    parsed = parse(GATEWAY, payload)
    assert parsed.readings == [
        Reading(E1, SPEC_INSTANT, 10.0),
        Reading("NCK-W-001", SPEC_INSTANT, 3.0),
    ]
    assert len(parsed.rejections) == 1
    rejection = parsed.rejections[0]
    assert rejection.reason is Reason.non_finite_value
    assert rejection.meter_id == "NCK-E-002"
    assert rejection.detail.startswith("readings[1]: ")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_literal_in_an_unknown_field_is_ignored(literal: bytes) -> None:
    """Unknown fields are ignored whatever they hold; only the reading's own fields count."""
    payload = b'{"ts": 1767574800, "value": 5, "rssi": ' + literal + b"}"
    assert only_reading(single(payload)) == Reading(E1, SPEC_INSTANT, 5.0)


@pytest.mark.parametrize("value", [-1, -0.5, -1e-300, -1532.25, -(10**15)])
def test_negative_value(value: float) -> None:
    assert_rejected(single({"ts": SPEC_TS, "value": value}), Reason.negative_value)


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (0.0, 0.0), (5e-324, 5e-324), (1e308, 1e308), (10**15, 1e15)]
)
def test_value_edges_accepted(value: float, expected: float) -> None:
    reading = only_reading(single({"ts": SPEC_TS, "value": value}))
    assert reading.value == expected
    assert type(reading.value) is float


# --- meters -------------------------------------------------------------------------------


def test_unknown_meter() -> None:
    parsed = single({"ts": SPEC_TS, "value": 1}, "NCK-E-999")
    rejection = assert_rejected(parsed, Reason.unknown_meter, "NCK-E-999")
    assert "NCK-E-999" in rejection.detail
    batch = {"readings": [{"meter": "NCK-E-999", "ts": SPEC_TS, "value": 1}]}
    assert_rejected(parse(GATEWAY, batch), Reason.unknown_meter, None)


def test_inactive_meter() -> None:
    assert_rejected(
        single({"ts": SPEC_TS, "value": 1}, "NCK-E-OLD"), Reason.inactive_meter, "NCK-E-OLD"
    )
    batch = {"readings": [{"meter": "NCK-E-OLD", "ts": SPEC_TS, "value": 1}]}
    assert_rejected(parse(GATEWAY, batch), Reason.inactive_meter, "NCK-E-OLD")


def test_wrong_site() -> None:
    rejection = assert_rejected(
        single({"ts": SPEC_TS, "value": 1}, "DC-E-001"), Reason.wrong_site, "DC-E-001"
    )
    assert "DEEPC" in rejection.detail
    batch = {"readings": [{"meter": "DC-E-001", "ts": SPEC_TS, "value": 1}]}
    assert_rejected(parse(GATEWAY, batch), Reason.wrong_site, "DC-E-001")
    # The right meter under a site that is not its own (or not registered at all).
    other = parse(f"parks/DEEPC/meters/{E1}", {"ts": SPEC_TS, "value": 1})
    assert other.site_id == "DEEPC"
    assert_rejected(other, Reason.wrong_site, E1)
    assert_rejected(parse(f"parks/XYZ/meters/{E1}", {"ts": SPEC_TS, "value": 1}), Reason.wrong_site)
    # The same meter published under its own site is accepted.
    own = parse("parks/DEEPC/meters/DC-E-001", {"ts": SPEC_TS, "value": 1})
    assert own == Parsed("DEEPC", [Reading("DC-E-001", SPEC_INSTANT, 1.0)], [])


# --- time checks --------------------------------------------------------------------------


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone(timedelta(hours=7))).isoformat()


def test_future_timestamp_beyond_skew_refused() -> None:
    for ts in (
        NOW + SKEW + timedelta(seconds=1),
        NOW + SKEW + timedelta(microseconds=1),
        NOW + timedelta(days=365),
    ):
        assert_rejected(single({"ts": _iso(ts), "value": 1}), Reason.future_timestamp)
    assert_rejected(
        single({"ts": (NOW + SKEW).timestamp() + 1, "value": 1}), Reason.future_timestamp
    )


def test_future_timestamp_within_skew_accepted() -> None:
    for ts in (NOW, NOW + timedelta(seconds=1), NOW + SKEW - timedelta(seconds=1), NOW + SKEW):
        assert only_reading(single({"ts": _iso(ts), "value": 1})).ts == ts


def test_future_skew_is_configurable() -> None:
    limits = Limits(max_future_skew=timedelta(hours=1))
    ahead = NOW + timedelta(minutes=30)
    assert only_reading(single({"ts": _iso(ahead), "value": 1}, limits=limits)).ts == ahead
    assert_rejected(single({"ts": _iso(ahead), "value": 1}), Reason.future_timestamp)
    beyond = NOW + timedelta(hours=1, seconds=1)
    assert_rejected(
        single({"ts": _iso(beyond), "value": 1}, limits=limits), Reason.future_timestamp
    )


def test_before_commissioning() -> None:
    before = COMMISSIONED - timedelta(seconds=1)
    rejection = assert_rejected(
        single({"ts": _iso(before), "value": 1}), Reason.before_commissioning
    )
    assert COMMISSIONED.isoformat() in rejection.detail
    assert_rejected(
        single({"ts": COMMISSIONED.timestamp() - 0.5, "value": 1}), Reason.before_commissioning
    )
    assert only_reading(single({"ts": _iso(COMMISSIONED), "value": 1})).ts == COMMISSIONED
    assert only_reading(single({"ts": COMMISSIONED.timestamp(), "value": 1})).ts == COMMISSIONED


# --- gateway batches ----------------------------------------------------------------------


def test_gateway_batch_mix_keeps_good_rejects_bad_in_order() -> None:
    future = _iso(NOW + SKEW + timedelta(minutes=1))
    items: list[object] = [
        {"meter": E1, "ts": SPEC_TS, "value": 100},
        {"meter": "NCK-E-999", "ts": SPEC_TS, "value": 1},
        {"meter": "NCK-W-001", "ts": "2026-01-05T08:00:00+07:00", "value": 1500, "unit": "L"},
        {"meter": "NCK-E-002", "ts": SPEC_TS, "value": -3},
        42,
        {"meter": "DC-E-001", "ts": SPEC_TS, "value": 1},
        {"meter": E1, "ts": future, "value": 1},
        {"meter": "NCK-E-002", "ts": SPEC_TS + 900, "value": 7.5, "rssi": -71, "fw": {"v": [2]}},
        {"meter": "NCK-W-001", "ts": SPEC_TS, "value": 1, "unit": "kWh"},
        {"meter": "NCK-E-OLD", "ts": SPEC_TS, "value": 1},
        {"meter": E1, "ts": "2026-01-05T08:00:00", "value": 1},
        {"meter": E1, "ts": SPEC_TS, "value": "1"},
        {"meter": "NCK-E-WH", "ts": SPEC_TS, "value": 2, "unit": "kWh"},
        {"meter": E1, "ts": _iso(COMMISSIONED - timedelta(days=1)), "value": 1},
    ]
    doc = {"gateway": "gw-1", "seq": 17, "sent_at": "2026-01-05T08:00:01+07:00", "readings": items}
    parsed = parse(GATEWAY, doc)
    assert parsed.site_id == "NCK"
    assert parsed.readings == [
        Reading(E1, SPEC_INSTANT, 100.0),
        Reading("NCK-W-001", SPEC_INSTANT, 1.5),
        Reading("NCK-E-002", SPEC_INSTANT + timedelta(minutes=15), 7.5),
        Reading("NCK-E-WH", SPEC_INSTANT, 2000.0),
    ]
    expected = [
        (1, Reason.unknown_meter, None),
        (3, Reason.negative_value, "NCK-E-002"),
        (4, Reason.invalid_payload, None),
        (5, Reason.wrong_site, "DC-E-001"),
        (6, Reason.future_timestamp, E1),
        (8, Reason.unit_mismatch, "NCK-W-001"),
        (9, Reason.inactive_meter, "NCK-E-OLD"),
        (10, Reason.invalid_timestamp, E1),
        (11, Reason.invalid_payload, E1),
        (13, Reason.before_commissioning, E1),
    ]
    assert [(r.reason, r.meter_id) for r in parsed.rejections] == [(e[1], e[2]) for e in expected]
    for rejection, (index, _, _) in zip(parsed.rejections, expected, strict=True):
        assert rejection.detail.startswith(f"readings[{index}]: ")
        assert len(rejection.detail) > len(f"readings[{index}]: ")
    assert len(parsed.readings) + len(parsed.rejections) == len(items)


def test_unknown_fields_ignored_single() -> None:
    doc = {
        "ts": SPEC_TS,
        "value": 12.5,
        "unit": "kWh",
        "rssi": -71,
        "battery": 3.1,
        "meta": {"fw": "1.2.3", "flags": [True, None]},
        "meter": "NCK-E-002",  # the topic names the meter of a single reading
    }
    assert single(doc) == Parsed("NCK", [Reading(E1, SPEC_INSTANT, 12.5)], [])


def test_gateway_rejection_names_only_registered_meters() -> None:
    long_name = "X" * 10_000
    batch = {"readings": [{"meter": long_name, "ts": SPEC_TS, "value": 1}]}
    rejection = assert_rejected(parse(GATEWAY, batch), Reason.unknown_meter, None)
    assert len(rejection.detail) < 200


# --- properties ---------------------------------------------------------------------------


def naive(ts: datetime) -> datetime:
    """Hypothesis takes naive bounds for `st.datetimes`."""
    return ts.replace(tzinfo=None)


TOPICS = st.sampled_from([SINGLE, GATEWAY])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=16,
)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
ts_values = st.one_of(
    st.datetimes(timezones=offsets).map(datetime.isoformat),
    # The ends of datetime's range, where a UTC offset can push the instant out of it.
    st.datetimes(max_value=naive(datetime(1, 1, 2, tzinfo=UTC)), timezones=offsets).map(
        datetime.isoformat
    ),
    st.datetimes(min_value=naive(datetime(9999, 12, 30, tzinfo=UTC)), timezones=offsets).map(
        datetime.isoformat
    ),
    st.datetimes(
        min_value=naive(COMMISSIONED - timedelta(days=200)),
        max_value=naive(NOW + timedelta(days=1)),
        timezones=offsets,
    ).map(datetime.isoformat),
    st.integers(min_value=1_700_000_000, max_value=1_770_000_000),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    json_values,
)
value_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(min_value=1e300, allow_infinity=False),
    json_values,
)
unit_values = st.one_of(
    st.sampled_from(["Wh", "kWh", "MWh", "L", "m3", "kg", "t", "BTU", ""]), json_values
)
meter_values = st.one_of(st.sampled_from([*METERS, "NCK-E-999"]), json_values)
reading_objects = st.fixed_dictionaries(
    {},
    optional={
        "ts": ts_values,
        "value": value_values,
        "unit": unit_values,
        "meter": meter_values,
        "extra": json_values,
    },
)
documents = st.one_of(
    json_values,
    reading_objects,
    st.fixed_dictionaries(
        {
            "readings": st.one_of(
                st.lists(st.one_of(reading_objects, json_values), max_size=6), json_values
            )
        },
        optional={"extra": json_values},
    ),
)


def check_outcome(topic: str, parsed: Parsed) -> None:
    assert parsed.site_id == "NCK"
    assert parsed.readings or parsed.rejections
    if topic == SINGLE:
        assert len(parsed.readings) + len(parsed.rejections) == 1
        for rejection in parsed.rejections:
            assert rejection.meter_id == E1
    for reading in parsed.readings:
        assert reading.meter_id in METERS
        assert isinstance(reading.value, float)
        assert math.isfinite(reading.value)
        assert reading.value >= 0
        assert reading.ts.tzinfo is UTC
        assert COMMISSIONED <= reading.ts <= NOW + SKEW
    for rejection in parsed.rejections:
        assert isinstance(rejection.reason, Reason)
        assert rejection.reason is not Reason.store_error
        assert rejection.detail


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, payload=st.binary(max_size=300))
def test_property_arbitrary_bytes(topic: str, payload: bytes) -> None:
    check_outcome(topic, parse(topic, payload))


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, doc=documents)
def test_property_arbitrary_json(topic: str, doc: object) -> None:
    check_outcome(topic, parse(topic, encode(doc)))


@dataclass(frozen=True)
class Item:
    doc: object
    reading: Reading | None = None  # None: a rejection with `reason`
    reason: Reason | None = None
    meter_id: str | None = None


in_window = st.datetimes(
    min_value=naive(COMMISSIONED),
    max_value=naive(NOW + SKEW),
    timezones=st.just(UTC),
)
good_values = st.one_of(
    st.floats(min_value=0, max_value=1e12), st.integers(min_value=0, max_value=10**12)
)


def _ts(draw: st.DrawFn, when: datetime) -> tuple[object, datetime]:
    if draw(st.booleans()):
        whole = when.replace(microsecond=0)
        return int(whole.timestamp()), whole
    return when.astimezone(draw(offsets)).isoformat(), when


@st.composite
def batch_items(draw: st.DrawFn) -> Item:
    kind = draw(
        st.sampled_from(
            [
                "good",
                "not_object",
                "no_meter",
                "no_value",
                "string_value",
                "non_finite",
                "negative",
                "unknown",
                "inactive",
                "wrong_site",
                "bad_unit",
                "bad_ts",
                "future",
                "before",
            ]
        )
    )
    meter_id = draw(st.sampled_from(ACTIVE_NCK))
    unit = METERS[meter_id].unit
    ts, when = _ts(draw, draw(in_window))
    value = draw(good_values)
    doc: dict[str, object] = {"meter": meter_id, "ts": ts, "value": value}
    if draw(st.booleans()):
        doc["unit"] = unit
    if draw(st.booleans()):
        doc["note"] = draw(json_values)
    if kind == "good":
        return Item(doc, Reading(meter_id, when, float(value)))
    if kind == "not_object":
        other = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return Item(other, reason=Reason.invalid_payload)
    if kind == "no_meter":
        del doc["meter"]
        return Item(doc, reason=Reason.invalid_payload)
    reason: Reason
    if kind == "no_value":
        del doc["value"]
        reason = Reason.invalid_payload
    elif kind == "string_value":
        doc["value"] = str(value)
        reason = Reason.invalid_payload
    elif kind == "non_finite":
        doc["value"] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        reason = Reason.non_finite_value
    elif kind == "negative":
        doc["value"] = -draw(st.floats(min_value=1e-300, max_value=1e300))
        reason = Reason.negative_value
    elif kind == "unknown":
        unknown = "NCK-Z-" + draw(st.text(max_size=8))
        doc["meter"] = unknown
        return Item(doc, reason=Reason.unknown_meter)
    elif kind == "inactive":
        doc["meter"] = meter_id = "NCK-E-OLD"
        reason = Reason.inactive_meter
    elif kind == "wrong_site":
        doc["meter"] = meter_id = "DC-E-001"
        reason = Reason.wrong_site
    elif kind == "bad_unit":
        doc["unit"] = "kWh" if unit in ("m3", "L") else draw(st.sampled_from(["m3", "L", "BTU"]))
        reason = Reason.unit_mismatch
    elif kind == "bad_ts":
        doc["ts"] = draw(
            st.sampled_from(
                ["2026-01-05T08:00:00", "2026-01-05", "soon", "", True, None, 1e20, [1]]
            )
        )
        reason = Reason.invalid_timestamp
    elif kind == "future":
        ahead = draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)))
        doc["ts"], _ = _ts(draw, NOW + SKEW + ahead)
        reason = Reason.future_timestamp
    else:
        behind = draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)))
        doc["ts"], _ = _ts(draw, COMMISSIONED - behind)
        reason = Reason.before_commissioning
    return Item(doc, reason=reason, meter_id=meter_id)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(batch_items(), min_size=1, max_size=12))
def test_property_gateway_batch_accounts_for_every_item(items: list[Item]) -> None:
    parsed = parse(GATEWAY, encode({"readings": [item.doc for item in items]}))
    assert len(parsed.readings) + len(parsed.rejections) == len(items)
    assert parsed.readings == [item.reading for item in items if item.reading is not None]
    expected = [(i, item) for i, item in enumerate(items) if item.reading is None]
    assert [(r.reason, r.meter_id) for r in parsed.rejections] == [
        (item.reason, item.meter_id) for _, item in expected
    ]
    for rejection, (index, _) in zip(parsed.rejections, expected, strict=True):
        assert rejection.detail.startswith(f"readings[{index}]: ")


# ---- ownership: a gateway writes only its own enterprise's meters (SPEC section 3) ----
def test_a_gateway_naming_another_enterprises_meter_is_quarantined_as_foreign() -> None:
    batch = {"readings": [{"meter": "NCK-E-T2", "ts": SPEC_TS, "value": 1}]}
    assert_rejected(parse(GATEWAY, batch), Reason.foreign_meter, "NCK-E-T2")


def test_a_gateway_naming_another_sites_meter_is_wrong_site_not_foreign() -> None:
    batch = {"readings": [{"meter": "DC-E-001", "ts": SPEC_TS, "value": 1}]}
    assert_rejected(parse(GATEWAY, batch), Reason.wrong_site, "DC-E-001")


def test_an_unregistered_gateway_owns_no_meter() -> None:
    batch = {"readings": [{"meter": E1, "ts": SPEC_TS, "value": 1}]}
    assert_rejected(parse("parks/NCK/gateways/gw-9", batch), Reason.foreign_meter, E1)


def test_a_mixed_batch_keeps_its_own_readings_and_quarantines_the_foreign_ones() -> None:
    items = [
        {"meter": E1, "ts": SPEC_TS, "value": 1},
        {"meter": "NCK-E-T2", "ts": SPEC_TS, "value": 999999},
        {"meter": "NCK-E-002", "ts": SPEC_TS, "value": 2},
        {"meter": "DC-E-001", "ts": SPEC_TS, "value": 888888},
    ]
    out = parse(GATEWAY, {"readings": items})
    assert out.readings == [
        Reading(E1, SPEC_INSTANT, 1.0),
        Reading("NCK-E-002", SPEC_INSTANT, 2.0),
    ]
    assert [(r.reason, r.meter_id) for r in out.rejections] == [
        (Reason.foreign_meter, "NCK-E-T2"),
        (Reason.wrong_site, "DC-E-001"),
    ]


@given(
    gateway=st.sampled_from(["gw-1", "gw-2", "dc-gw", "gw-9"]),
    site=st.sampled_from(["NCK", "DEEPC"]),
    meters=st.lists(st.sampled_from(sorted(METERS)), min_size=1, max_size=8),
)
def test_ownership_holds_for_any_gateway_and_meter(
    gateway: str, site: str, meters: list[str]
) -> None:
    items = [{"meter": m, "ts": SPEC_TS + i, "value": 1} for i, m in enumerate(meters)]
    out = parse(f"parks/{site}/gateways/{gateway}", {"readings": items})
    for reading in out.readings:
        info = METERS[reading.meter_id]
        assert info.gateway_id == gateway and info.site_id == site
    assert len(out.readings) + len(out.rejections) == len(meters)
