"""The shipped Mosquitto configuration, checked on a real broker: who may do what."""

from __future__ import annotations

from contextlib import closing

import paho.mqtt.client as mqtt

from core.park.models import Park
from tests.kit.broker import Broker
from tests.kit.mqtt import login
from tests.mqtt import connect


def _gateways(park: Park) -> list[tuple[str, str, list[str]]]:
    return [
        (site.id, ent.gateway_id, [m.id for m in ent.meters])
        for site in park.sites
        for ent in site.enterprises
        if ent.meters
    ]


def test_anonymous_client_is_refused(broker: Broker) -> None:
    for protocol in (mqtt.MQTTv311, mqtt.MQTTv5):
        with closing(connect(broker.port, None, None, protocol=protocol)) as client:
            assert client.connack is not None
            assert client.connack.is_failure
            assert client.connack.getName() == "Not authorized"


def test_wrong_password_is_refused(broker: Broker, sample_park: Park) -> None:
    _, gateway, _ = _gateways(sample_park)[0]
    with closing(connect(broker.port, gateway, "not-the-password")) as client:
        assert client.connack is not None and client.connack.is_failure


def test_gateway_publishes_only_under_its_own_topics(broker: Broker, sample_park: Park) -> None:
    (site, gw, meters), (_, other_gw, other_meters) = _gateways(sample_park)[:2]
    with closing(login(broker, "svc-ingest-1")) as ingest, closing(login(broker, gw)) as gateway:
        codes = ingest.subscribe(["parks/+/meters/+", "parks/+/gateways/+"])
        assert not any(c.is_failure for c in codes)
        allowed = [f"parks/{site}/gateways/{gw}", f"parks/{site}/meters/{meters[0]}"]
        refused = [
            f"parks/{site}/gateways/{other_gw}",
            f"parks/{site}/meters/{other_meters[0]}",
            f"parks/OTHER-SITE/gateways/{gw}",
            f"parks/OTHER-SITE/meters/{meters[0]}",
        ]
        acks = {}
        for topic in allowed + refused:
            info = gateway.client.publish(topic, b'{"readings": []}', qos=1)
            acks[topic] = info.mid
        received = set(ingest.received(timeout=1.0))
        assert received == set(allowed)
        for topic in refused:
            assert gateway.pubacks[acks[topic]].getName() == "Not authorized", topic
        for topic in allowed:
            assert not gateway.pubacks[acks[topic]].is_failure, topic


def test_client_cannot_take_over_the_ingestor_client_id(broker: Broker, sample_park: Park) -> None:
    _, gw, _ = _gateways(sample_park)[0]
    with (
        closing(login(broker, "svc-ingest-1", client_id="svc-ingest-1")) as ingest,
        closing(login(broker, gw, client_id="svc-ingest-1")) as intruder,
    ):
        assert intruder.connack is not None and not intruder.connack.is_failure
        # A round trip on the ingestor's connection after the intruder's CONNACK: had
        # the broker handed the session over, this connection would be closed by now.
        ingest.subscribe(["parks/+/meters/+"])
        assert not ingest.disconnected.is_set(), "the ingestor's session was taken over"
