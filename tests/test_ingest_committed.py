"""End-to-end delivery (SPEC section 3): the retained `committed` position per
gateway, published by the real ingestor only after the readings it covers are in
the store, readable by that gateway alone."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from core.park.models import Park
from core.settings import Settings
from ingest.parse import Position, Reason, parse_message
from ingest.positions import advance, arrivals
from tests import mqtt as test_mqtt
from tests.ingest_harness import (
    BASE_TS,
    IngestProcess,
    count,
    gateway,
)
from tests.kit.broker import Broker
from tests.kit.ingest import running_ingest
from tests.kit.mqtt import subscribed

USER = "svc-ingest-4"


@given(st.permutations(list(range(1, 30))), st.integers(0, 29))
def test_position_moves_over_the_unbroken_run_only(order: list[int], held: int) -> None:
    """Whatever the arrival order, the position is the longest run 1..k that arrived."""
    arrived = [s for s in order if s != held] if held else order
    seq, ahead = 0, frozenset[int]()
    for s in arrived:
        seq, ahead = advance(seq, ahead, [s])
    expected = held - 1 if held else 29
    assert seq == expected
    assert ahead == frozenset(s for s in arrived if s > expected)


def test_arrivals_are_grouped_by_site_gateway_and_epoch() -> None:
    got = arrivals(
        [
            ("NCK", Position("G1", "a", 1)),
            ("NCK", Position("G1", "b", 1)),
            ("NCK", Position("G1", "a", 2)),
            ("NCK", None),
            (None, Position("G2", "a", 1)),
        ]
    )
    assert got == {("NCK", "G1", "a"): [1, 2], ("NCK", "G1", "b"): [1]}


@pytest.fixture
def ingest(park_db: tuple[Settings, Engine], broker: Broker) -> Iterator[IngestProcess]:
    with running_ingest(park_db[0], broker, USER) as proc:
        yield proc


def _batch(meters: list[str], seq: int, epoch: str, per: int = 50) -> bytes:
    start = int(BASE_TS.timestamp()) + 3600 * seq
    items = [
        {"meter": meters[i % len(meters)], "ts": start + 60 * (i // len(meters)), "value": i}
        for i in range(per)
    ]
    return json.dumps({"epoch": epoch, "seq": seq, "readings": items}).encode()


def _next_committed(client: test_mqtt.TestClient, timeout: float = 30) -> dict[str, object]:
    """The next position of this test's epoch: the shared broker may still hold a
    retained one of another test's simulator run for the same gateway."""
    while True:
        doc = json.loads(client.messages.get(timeout=timeout).payload)
        assert isinstance(doc, dict)
        if doc["epoch"] == "e1":
            return doc


def test_committed_follows_the_store_and_waits_for_a_gap(
    park_db: tuple[Settings, Engine],
    broker: Broker,
    test_park: Park,
    ingest: IngestProcess,
) -> None:
    _, engine = park_db
    gw, meters = gateway(test_park, index=9)
    topic = f"parks/NCK/gateways/{gw}"
    with subscribed(broker, gw, f"{topic}/committed", client_id=gw) as watcher:
        watcher.client.publish(topic, _batch(meters, 1, "e1"), qos=1).wait_for_publish(5)
        watcher.client.publish(topic, _batch(meters, 2, "e1"), qos=1).wait_for_publish(5)
        first = _next_committed(watcher)
        if first["seq"] == 1:
            first = _next_committed(watcher)
        assert (first["epoch"], first["seq"]) == ("e1", 2)
        assert str(first["at"]).endswith("Z")
        # Only after the commit: everything it covers is in the store already.
        assert count(engine) == 100
        # Seq 4 past the gap at 3 is stored but does not move the position ...
        watcher.client.publish(topic, _batch(meters, 4, "e1"), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 30
        while count(engine) < 150:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(queue.Empty):
            watcher.messages.get(timeout=1.0)
        # ... until 3 fills it: then the position covers 4 at once.
        watcher.client.publish(topic, _batch(meters, 3, "e1"), qos=1).wait_for_publish(5)
        assert (_next_committed(watcher)["seq"]) == 4
        assert count(engine) == 200
    # Retained: a gateway that connects later reads its position at once.
    with subscribed(broker, gw, f"{topic}/committed", client_id=gw) as later:
        doc = _next_committed(later, timeout=10)
        assert (doc["epoch"], doc["seq"]) == ("e1", 4)
    # Another gateway may not read it (the ACL's %u pattern), retained or not.
    other, _ = gateway(test_park, site_id="DVU", index=4)
    with (
        subscribed(broker, other, f"{topic}/committed", client_id=other) as spy,
        pytest.raises(queue.Empty),
    ):
        spy.messages.get(timeout=1.0)


@pytest.mark.parametrize(
    ("extra", "position"),
    [
        ({}, None),
        ({"seq": 7}, Position("G1", "", 7)),
        ({"seq": 7, "epoch": "a"}, Position("G1", "a", 7)),
    ],
)
def test_a_batch_may_carry_its_position(extra: dict[str, object], position: object) -> None:
    doc = {**extra, "readings": [{"meter": "NO-SUCH", "ts": 1767571200, "value": 1}]}
    parsed = parse_message("parks/NCK/gateways/G1", json.dumps(doc).encode(), "parks", {}, BASE_TS)
    assert parsed.position == position
    assert [r.reason for r in parsed.rejections] == [Reason.unknown_meter]  # still covered


@pytest.mark.parametrize(
    "extra",
    [{"seq": 0}, {"seq": "7"}, {"seq": True}, {"seq": 1.5}, {"epoch": "a"}, {"seq": 1, "epoch": 5}],
)
def test_a_malformed_position_quarantines_the_batch(extra: dict[str, object]) -> None:
    doc = {**extra, "readings": []}
    parsed = parse_message("parks/NCK/gateways/G1", json.dumps(doc).encode(), "parks", {}, BASE_TS)
    assert parsed.position is None
    assert [r.reason for r in parsed.rejections] == [Reason.invalid_payload]
