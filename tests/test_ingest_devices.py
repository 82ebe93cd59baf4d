"""Device protocols end to end (SPEC section 3.1): each vendor's documented payload,
published by its own broker user under the rendered ACL, through the real
`emissions ingest` process into the real store.

Fixtures and their documentation pages: tests/device_fixtures.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from core.park.models import Park
from core.settings import Settings
from tests.device_fixtures import (
    CHIRPSTACK_APP,
    CHIRPSTACK_UP,
    NEURON_VALUES,
    SHELLY_DEVICE,
    SHELLY_EM1_DEVICE,
    SHELLY_EM1_NOTIFY,
    SHELLY_NOTIFY,
    TASMOTA_SENSOR,
    TASMOTA_TOPIC,
    chirpstack_with_object,
    device_park,
    encode,
)
from tests.ingest_harness import IngestProcess, publish_all, wait_for_count
from tests.kit.broker import Broker, running_broker
from tests.kit.database import park_database
from tests.kit.ingest import running_ingest

LORA_TOPIC = f"application/{CHIRPSTACK_APP}/device/0101010101010101/event/up"
FOREIGN_TOPIC = f"application/{CHIRPSTACK_APP}/device/0202020202020202/event/up"
NEURON_TOPIC = "/neuron/DEV-NEURON-GW/modbus/grp"


@dataclass
class Env:
    engine: Engine
    broker: Broker
    ingest: IngestProcess

    def readings(self, meter: str) -> list[tuple[datetime, float]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT ts, value FROM readings WHERE meter_id = :m ORDER BY ts"), {"m": meter}
            ).all()
        return [(r.ts.astimezone(UTC), r.value) for r in rows]

    def quarantine(self, topic: str) -> list[tuple[str, str | None, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT reason, meter_id, detail FROM quarantine WHERE topic = :t "
                    "ORDER BY reason, meter_id"
                ),
                {"t": topic},
            ).all()
        return [(r.reason, r.meter_id, r.detail) for r in rows]

    def wait_quarantine(self, n: int) -> int:
        return wait_for_count(self.engine, n, table="quarantine", timeout=30)


@pytest.fixture(scope="module")
def env(database_factory: Callable[[], Settings], test_park: Park) -> Iterator[Env]:
    park = device_park(test_park)
    with (
        park_database(database_factory, park) as (settings, engine),
        running_broker(park) as broker,
        running_ingest(settings, broker) as ingest,
    ):
        yield Env(engine, broker, ingest)


def _until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll a real signal (a row, a metric) until it holds or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _publish(env: Env, user: str, topic: str, doc: object) -> None:
    payload = doc if isinstance(doc, bytes) else encode(doc)  # type: ignore[arg-type]
    publish_all(env.broker, user, [(topic, payload)], timeout=20)


def test_vendor_fixtures_are_stored_exactly(env: Env) -> None:
    _publish(env, "DEV-CHIRPSTACK", LORA_TOPIC, chirpstack_with_object({"energy": 1532250}))
    _publish(env, SHELLY_DEVICE, f"{SHELLY_DEVICE}/events/rpc", SHELLY_NOTIFY)
    _publish(env, SHELLY_EM1_DEVICE, f"{SHELLY_EM1_DEVICE}/events/rpc", SHELLY_EM1_NOTIFY)
    _publish(env, TASMOTA_TOPIC, f"tele/{TASMOTA_TOPIC}/SENSOR", TASMOTA_SENSOR)
    _publish(env, "DEV-NEURON-GW", NEURON_TOPIC, NEURON_VALUES)
    wait_for_count(env.engine, 5, timeout=30)

    assert env.readings("DEV-LORA-M1") == [
        (datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC), 1532.25)
    ]
    assert env.readings("DEV-SH-M1") == [(datetime.fromtimestamp(1631186545.04, UTC), 8328.18)]
    [(ts, value)] = env.readings("DEV-SH-M2")
    assert ts == datetime.fromtimestamp(1631186545.04, UTC)
    assert value == pytest.approx(2.77606)
    assert env.readings("DEV-TAS-M1") == [(datetime(2022, 1, 11, 20, 57, 38, tzinfo=UTC), 3.705)]
    assert env.readings("DEV-NE-M1") == [(datetime.fromtimestamp(1650006388.943, UTC), 123.0)]
    # Neuron's failed tag is kept out with its error code, naming its meter.
    env.wait_quarantine(1)
    [(reason, meter, detail)] = env.quarantine(NEURON_TOPIC)
    assert (reason, meter) == ("device_error", "DEV-NE-M2")
    assert "2014" in detail


def test_bad_and_foreign_payloads_are_quarantined_with_their_reason(env: Env) -> None:
    foreign = chirpstack_with_object({"energy": 10.0})
    foreign["deviceInfo"]["devEui"] = "0202020202020202"
    with env.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM quarantine")).scalar_one()
        stored_before = conn.execute(text("SELECT count(*) FROM readings")).scalar_one()
    _publish(env, "DEV-CHIRPSTACK", LORA_TOPIC, CHIRPSTACK_UP)  # no codec: no `object`
    _publish(env, "DEV-CHIRPSTACK", FOREIGN_TOPIC, foreign)
    _publish(env, TASMOTA_TOPIC, f"tele/{TASMOTA_TOPIC}/SENSOR", b"{oops")
    _publish(env, SHELLY_DEVICE, f"{SHELLY_DEVICE}/events/rpc", {"method": "NotifyStatus"})
    assert env.wait_quarantine(before + 4) == before + 4

    assert [q[:2] for q in env.quarantine(LORA_TOPIC)] == [("codec_missing", None)]
    assert [q[:2] for q in env.quarantine(FOREIGN_TOPIC)] == [("foreign_meter", "DEV-TAS-M1")]
    assert [q[:2] for q in env.quarantine(f"tele/{TASMOTA_TOPIC}/SENSOR")] == [("not_json", None)]
    assert [q[:2] for q in env.quarantine(f"{SHELLY_DEVICE}/events/rpc")] == [
        ("invalid_payload", None)
    ]
    with env.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM readings")).scalar_one() == stored_before


def test_chirpstack_event_delivered_twice_is_one_reading_and_one_duplicate(env: Env) -> None:
    event = chirpstack_with_object({"energy": 2000000})
    event["deduplicationId"] = "9d1c6f1e-0f3a-4a55-9f7e-1a2b3c4d5e6f"
    event["time"] = "2022-07-18T10:34:15.000000000+00:00"
    _publish(env, "DEV-CHIRPSTACK", LORA_TOPIC, event)
    _publish(env, "DEV-CHIRPSTACK", LORA_TOPIC, json.dumps(event).encode())
    # The duplicate is counted once both messages are committed.
    counted = 'emissions_ingest_readings_total{result="duplicate"} 1.0'
    assert _until(lambda: counted in env.ingest.metrics()), "no duplicate counted"
    stamp = datetime(2022, 7, 18, 10, 34, 15, tzinfo=UTC)
    assert [r for r in env.readings("DEV-LORA-M1") if r[0] == stamp] == [(stamp, 2000.0)]


def test_a_device_cannot_publish_on_another_devices_topic(env: Env) -> None:
    """The ACL gives each device user its own native topics only: the Tasmota plug's
    publish on the Shelly's topic is dropped by the broker, its own one arrives."""
    forged = json.loads(json.dumps(SHELLY_NOTIFY))
    forged["params"]["ts"] = 1631190000.0
    _publish(env, TASMOTA_TOPIC, f"{SHELLY_DEVICE}/events/rpc", forged)
    own = {**TASMOTA_SENSOR, "Time": "2022-01-11T22:57:38"}
    _publish(env, TASMOTA_TOPIC, f"tele/{TASMOTA_TOPIC}/SENSOR", own)
    stamp = datetime(2022, 1, 11, 21, 57, 38, tzinfo=UTC)
    assert _until(lambda: any(ts == stamp for ts, _ in env.readings("DEV-TAS-M1")))
    forged_ts = datetime.fromtimestamp(1631190000.0, UTC)
    assert all(ts != forged_ts for ts, _ in env.readings("DEV-SH-M1"))
