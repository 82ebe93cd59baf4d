"""Device adapters (SPEC section 3.1) on the vendors' documented payloads: pure, no I/O.

Fixtures and their pages: tests/device_fixtures.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from core.broker.users import gateway_users, service_users
from core.emissions.counters import Reading as CounterReading
from core.emissions.counters import counter_intervals
from core.park.device_store import device_rows
from core.park.loader import ParkConfigError, parse_park
from core.park.models import Park
from core.topics import DEVICE_FILTERS
from ingest.adapters.base import DeviceRoute, routes_by_topic
from ingest.devices import parse_device_message
from ingest.parse import MeterInfo, Parsed, Reason
from tests.device_fixtures import (
    CHIRPSTACK_UP,
    NEURON_VALUES,
    SHELLY_EM1_NOTIFY,
    SHELLY_NOTIFY,
    TASMOTA_SENSOR,
    chirpstack_with_object,
    device_park,
    encode,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def park(sample_park: Park) -> Park:
    return device_park(sample_park)


@pytest.fixture(scope="module")
def routes(park: Park) -> dict[str, tuple[DeviceRoute, ...]]:
    return routes_by_topic(device_rows(park))


@pytest.fixture(scope="module")
def meters(park: Park) -> dict[str, MeterInfo]:
    return {
        m.id: MeterInfo(m.id, s.id, m.unit, m.commissioned_at, True, e.gateway_id)
        for s, e, m in park.meters()
    }


Parse = Callable[[str, object], Parsed]


@pytest.fixture(scope="module")
def parse(routes: dict[str, tuple[DeviceRoute, ...]], meters: dict[str, MeterInfo]) -> Parse:
    def run(topic: str, doc: object) -> Parsed:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return parse_device_message(topic, payload, routes.get(topic), meters, NOW)

    return run


LORA = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"
FOREIGN_LORA = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0202020202020202/event/up"


def test_chirpstack_object_value_is_read_at_the_event_time_in_the_meter_unit(parse: Parse) -> None:
    parsed = parse(LORA, chirpstack_with_object({"energy": 1532250}))
    assert parsed.rejections == []
    [reading] = parsed.readings
    assert reading.meter_id == "DEV-LORA-M1"
    # Nanoseconds in the documented `time` are truncated to microseconds.
    assert reading.ts == datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC)
    assert reading.value == 1532.25  # Wh from the codec, kWh registered


def test_chirpstack_without_codec_is_codec_missing(parse: Parse) -> None:
    parsed = parse(LORA, CHIRPSTACK_UP)  # the documented example as is
    assert parsed.readings == []
    assert [r.reason for r in parsed.rejections] == [Reason.codec_missing]


def test_chirpstack_mapped_field_absent_from_object_is_missing_field(parse: Parse) -> None:
    parsed = parse(LORA, chirpstack_with_object({"temperature": 21.5}))
    assert [(r.reason, r.meter_id) for r in parsed.rejections] == [
        (Reason.missing_field, "DEV-LORA-M1")
    ]


def test_chirpstack_event_of_another_device_on_this_topic_is_refused(parse: Parse) -> None:
    doc = chirpstack_with_object({"energy": 1.0})
    doc["deviceInfo"]["devEui"] = "0303030303030303"
    parsed = parse(LORA, doc)
    assert [r.reason for r in parsed.rejections] == [Reason.invalid_payload]


def test_device_mapped_to_another_enterprises_meter_is_foreign(parse: Parse) -> None:
    doc = chirpstack_with_object({"energy": 5.0})
    doc["deviceInfo"]["devEui"] = "0202020202020202"
    parsed = parse(FOREIGN_LORA, doc)
    assert parsed.readings == []
    assert [(r.reason, r.meter_id) for r in parsed.rejections] == [
        (Reason.foreign_meter, "DEV-TAS-M1")
    ]


def test_shelly_emdata_total_is_stored_in_wh_at_params_ts(parse: Parse) -> None:
    parsed = parse("shellypro3em-c8f09e8e4b0c/events/rpc", SHELLY_NOTIFY)
    assert parsed.rejections == []
    [reading] = parsed.readings
    assert (reading.meter_id, reading.value) == ("DEV-SH-M1", 8328.18)
    assert reading.ts == datetime.fromtimestamp(1631186545.04, UTC)


def test_shelly_em1data_total_converts_from_wh_to_the_meter_unit(parse: Parse) -> None:
    parsed = parse("shellyproem50-08f9e0e5d6c4/events/rpc", SHELLY_EM1_NOTIFY)
    [reading] = parsed.readings
    assert reading.meter_id == "DEV-SH-M2"
    assert reading.value == pytest.approx(2.77606)


def test_shelly_frames_without_the_total_store_nothing_and_reject_nothing(parse: Parse) -> None:
    topic = "shellypro3em-c8f09e8e4b0c/events/rpc"
    power_only = {**SHELLY_NOTIFY, "params": {"ts": 1631186546.0, "em:0": {"id": 0}}}
    event = {"src": "x", "dst": "y", "method": "NotifyEvent", "params": {"ts": 1.0}}
    for doc in (power_only, event):
        parsed = parse(topic, doc)
        assert (parsed.readings, parsed.rejections) == ([], [])


def test_shelly_negative_or_missing_ts_is_quarantined(parse: Parse) -> None:
    topic = "shellypro3em-c8f09e8e4b0c/events/rpc"
    doc = json.loads(json.dumps(SHELLY_NOTIFY))
    del doc["params"]["ts"]
    assert [r.reason for r in parse(topic, doc).rejections] == [Reason.invalid_timestamp]


def test_emdata_reset_reads_as_a_counter_reset_not_a_glitch() -> None:
    """EMData.ResetCounters restarts `total_act` at 0 and it grows from there."""
    t = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(4)]
    points = [CounterReading(t[0], 8328.18), CounterReading(t[1], 8400.0)]
    points += [CounterReading(t[2], 3.0), CounterReading(t[3], 60.0)]
    intervals, events = counter_intervals(points, None, 7200)
    assert [e.kind for e in events] == ["reset"]
    assert [round(i.amount, 2) for i in intervals] == [71.82, 3.0, 57.0]


def test_tasmota_time_is_read_in_the_devices_zone(parse: Parse) -> None:
    parsed = parse("tele/livingroom-lamp/SENSOR", TASMOTA_SENSOR)
    assert parsed.rejections == []
    [reading] = parsed.readings
    assert reading.ts == datetime(2022, 1, 11, 20, 57, 38, tzinfo=UTC)  # Berlin, CET
    assert (reading.meter_id, reading.value) == ("DEV-TAS-M1", 3.705)


def test_tasmota_bad_time_or_missing_energy_is_quarantined(parse: Parse) -> None:
    topic = "tele/livingroom-lamp/SENSOR"
    bad_time = {**TASMOTA_SENSOR, "Time": "yesterday"}
    no_energy = {"Time": TASMOTA_SENSOR["Time"], "AM2301": {"Temperature": 21.0}}
    assert [r.reason for r in parse(topic, bad_time).rejections] == [Reason.invalid_timestamp]
    assert [r.reason for r in parse(topic, no_energy).rejections] == [Reason.missing_field]


def test_neuron_values_are_stored_and_errors_quarantined_per_tag(parse: Parse) -> None:
    parsed = parse("/neuron/DEV-NEURON-GW/modbus/grp", NEURON_VALUES)
    [reading] = parsed.readings
    assert (reading.meter_id, reading.value) == ("DEV-NE-M1", 123.0)
    assert reading.ts == datetime.fromtimestamp(1650006388.943, UTC)
    assert [(r.reason, r.meter_id) for r in parsed.rejections] == [
        (Reason.device_error, "DEV-NE-M2")
    ]
    assert "2014" in parsed.rejections[0].detail


def test_neuron_payload_of_another_group_is_refused(parse: Parse) -> None:
    doc = {**NEURON_VALUES, "group": "other"}
    parsed = parse("/neuron/DEV-NEURON-GW/modbus/grp", doc)
    assert [r.reason for r in parsed.rejections] == [Reason.invalid_payload]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("tele/unknown-plug/SENSOR", encode(TASMOTA_SENSOR), Reason.unknown_device),
        ("tele/livingroom-lamp/SENSOR", b"{not json", Reason.not_json),
        ("tele/livingroom-lamp/SENSOR", b"[1, 2]", Reason.invalid_payload),
        ("shellypro3em-c8f09e8e4b0c/events/rpc", b'{"params": {}}', Reason.invalid_payload),
    ],
)
def test_unusable_device_messages_are_quarantined_whole(
    parse: Parse, topic: str, payload: bytes, reason: Reason
) -> None:
    parsed = parse(topic, payload)
    assert parsed.readings == []
    assert [r.reason for r in parsed.rejections] == [reason]


def test_negative_and_non_finite_values_keep_their_reasons(parse: Parse) -> None:
    neg = parse(LORA, chirpstack_with_object({"energy": -1}))
    assert [r.reason for r in neg.rejections] == [Reason.negative_value]
    nan = parse(LORA, b'{"time": "2022-07-18T09:34:15+00:00", "deviceInfo": '
                 b'{"devEui": "0101010101010101"}, "object": {"energy": NaN}}')  # fmt: skip
    assert [r.reason for r in nan.rejections] == [Reason.non_finite_value]


# ---- configuration -----------------------------------------------------------------


def _with_enterprise(park: Park, **changes: object) -> dict[str, object]:
    data = park.model_dump(mode="json")
    ent = data["sites"][-1]["enterprises"][0]
    ent.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"devices": []}, "needs a `devices` mapping"),
        (
            {"devices": [{"device": "XYZ", "field": "energy", "meter": "DEV-LORA-M1"}]},
            "devices[0]: device 'XYZ' is not a DevEUI",
        ),
        ({"protocol": "tasmota"}, "devices[0]: field 'energy' is not a tasmota total"),
        ({"protocol": "canonical"}, "devices[0]: a canonical gateway names its meters"),
        ({"protocol": "zigbee"}, "protocol"),
    ],
)
def test_park_file_device_errors_name_their_path(
    park: Park, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ParkConfigError) as err:
        parse_park(_with_enterprise(park, **changes))
    text = str(err.value)
    assert message in text
    assert "sites[1].enterprises[0]" in text


def test_mapping_to_an_unknown_meter_is_a_config_issue_naming_the_path(park: Park) -> None:
    devices = [{**park.sites[-1].enterprises[0].devices[0].model_dump(mode="json")}]
    devices[0]["meter"] = "NOPE"
    with pytest.raises(ParkConfigError) as err:
        parse_park(_with_enterprise(park, devices=devices))
    assert [str(i) for i in err.value.issues] == [
        "sites[1].enterprises[0].devices[0].meter: unknown meter 'NOPE'"
    ]


def test_broker_acl_gives_each_device_gateway_exactly_its_native_topics(park: Park) -> None:
    users = {u.name: u for u in service_users("parks") + gateway_users(park, "parks")}
    app = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device"
    assert users["DEV-CHIRPSTACK"].write == (
        f"{app}/0101010101010101/event/up",
        f"{app}/0202020202020202/event/up",
    )
    assert users["shellypro3em-c8f09e8e4b0c"].write == (
        "shellypro3em-c8f09e8e4b0c/events/rpc",
        "shellypro3em-c8f09e8e4b0c/online",
    )
    assert users["livingroom-lamp"].write == (
        "tele/livingroom-lamp/SENSOR",
        "tele/livingroom-lamp/LWT",
    )
    assert users["DEV-NEURON-GW"].write == ("/neuron/DEV-NEURON-GW/modbus/grp",)
    # Shelly and Tasmota devices are their own clients; the enterprise's gateway keeps
    # its canonical topics for other meters. ChirpStack's user has no canonical topic.
    assert users["DEV-SHELLY-GW"].write[0] == "parks/DEV/gateways/DEV-SHELLY-GW"
    assert not any(t.startswith("parks/") for t in users["DEV-CHIRPSTACK"].write)
    assert set(DEVICE_FILTERS) <= set(users["svc-ingest-1"].read)
