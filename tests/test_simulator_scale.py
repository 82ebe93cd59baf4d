"""Thousands of gateways from one simulator process (issue 13): one event loop, no
thread per gateway, each gateway with its own broker user and persistent session,
all of them reconnecting and republishing after a broker crash."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from core.park.models import Park
from simulator.district import with_generated_site
from simulator.publisher import MqttSink
from tests.kit.broker import Broker, running_broker
from tests.kit.mqtt import login

GATEWAYS = 1_200


@pytest.fixture(scope="module")
def district(sample_park: Park) -> Park:
    return with_generated_site(sample_park, "GEN", GATEWAYS)


@pytest.fixture
def district_broker(district: Park) -> Iterator[Broker]:
    with running_broker(district) as b:
        yield b


def test_1200_gateways_publish_from_one_thread_and_survive_a_broker_crash(
    district: Park, district_broker: Broker, tmp_path: Path
) -> None:
    site = next(s for s in district.sites if s.id == "GEN")
    meters = {e.gateway_id: e.meters[0].id for e in site.enterprises}
    assert len(meters) == GATEWAYS
    with closing(login(district_broker, "svc-ingest-1")) as watcher:
        threads = threading.active_count()
        sink = MqttSink(
            "127.0.0.1",
            district_broker.port,
            {gw: district_broker.password(gw) for gw in meters},
            buffer_path=tmp_path / "buffer.sqlite",
            window=10,
        )
        try:
            assert not any(c.is_failure for c in watcher.subscribe(["parks/GEN/gateways/+"]))
            sink.connect()  # every gateway logged in with its own user: CONNACK for each
            assert threading.active_count() - threads == 1  # the one loop thread
            for gw, meter in meters.items():
                batch = {"readings": [{"meter": meter, "ts": 1767571200, "value": 1.0}]}
                sink.publish(gw, f"parks/GEN/gateways/{gw}", json.dumps(batch).encode())
            sink.drain()
            got: dict[str, dict[str, object]] = {}
            while len(got) < GATEWAYS:
                msg = watcher.messages.get(timeout=30)
                got[msg.topic] = json.loads(msg.payload)
            assert set(got) == {f"parks/GEN/gateways/{gw}" for gw in meters}
            assert {doc["seq"] for doc in got.values()} == {1}  # each gateway numbers its own
            district_broker.kill9()
            district_broker.start()
            deadline = time.monotonic() + 120
            while sink.reconnects < GATEWAYS:  # each one noticed the crash and came back
                assert time.monotonic() < deadline, f"{sink.reconnects} gateways reconnected"
                time.sleep(0.1)
            sink.drain()  # and its batch acknowledged again by the new broker process
            assert sink.unconfirmed == GATEWAYS  # nobody committed: all still buffered
        finally:
            sink.close()
