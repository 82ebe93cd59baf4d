"""A gateway writes only its own enterprise's meters, through the real broker, the
real ingestor process and the real store (SPEC section 3, ownership), and a batch
of 10,000 readings goes through whole.

The broker's ACL lets a gateway publish on its own batch topic whatever it likes:
only ingest can refuse a meter of another enterprise (`foreign_meter`) or of
another site (`wrong_site`), and the rest of the batch must still be stored.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from core import topics
from core.broker.limits import BATCH_READINGS_DOCUMENTED, DEFAULT_MAX_PAYLOAD_BYTES
from core.park.devices import Protocol
from core.park.models import Park
from core.settings import Settings
from tests.ingest_harness import (
    BASE_TS,
    IngestProcess,
    count,
    publish_all,
    settle,
)
from tests.kit.broker import Broker
from tests.kit.ingest import running_ingest

USER = "svc-ingest-3"


@pytest.fixture
def ingest(park_db: tuple[Settings, Engine], broker: Broker) -> Iterator[IngestProcess]:
    with running_ingest(park_db[0], broker, USER) as proc:
        yield proc


def _outcome(engine: Engine, ts: int, digest: bytes) -> tuple[set[str], set[tuple[str, str]]]:
    with engine.connect() as conn:
        stored = set(
            conn.execute(
                text("SELECT meter_id FROM readings WHERE ts = to_timestamp(:ts)"), {"ts": ts}
            ).scalars()
        )
        quarantined = {
            (str(m), str(r))
            for m, r in conn.execute(
                text("SELECT meter_id, reason FROM quarantine WHERE payload_sha256 = :d"),
                {"d": digest},
            ).all()
        }
    return stored, quarantined


def _wait_for_outcome(
    engine: Engine, ts: int, digest: bytes, stored: int, quarantined: int
) -> tuple[set[str], set[tuple[str, str]]]:
    """Readings and quarantine rows of one message commit in one transaction."""
    deadline = time.monotonic() + 30
    while True:
        got = _outcome(engine, ts, digest)
        if len(got[0]) >= stored and len(got[1]) >= quarantined:
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_gateway_naming_other_enterprises_meters_stores_only_its_own(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park, ingest: IngestProcess
) -> None:
    _, engine = park_db
    # ChirpStack and Neuron gateways may publish only their devices' native topics.
    native_only = (Protocol.chirpstack_v4, Protocol.neuron)
    gateways = [
        (s.id, e.gateway_id)
        for s in test_park.sites
        for e in s.enterprises
        if e.meters and e.protocol not in native_only
    ]
    meters = [
        (s.id, e.gateway_id, m.id) for s in test_park.sites for e in s.enterprises for m in e.meters
    ]
    stamps = itertools.count()

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        publisher=st.sampled_from(gateways),
        named=st.lists(st.sampled_from(meters), min_size=1, max_size=8, unique=True),
    )
    def check(publisher: tuple[str, str], named: list[tuple[str, str, str]]) -> None:
        site, gw = publisher
        ts = int(BASE_TS.timestamp()) + 60 * next(stamps)
        items = [{"meter": m, "ts": ts, "value": 1.0 + i} for i, (_, _, m) in enumerate(named)]
        payload = json.dumps({"readings": items}).encode()
        own = {m for s, g, m in named if g == gw}
        refused = {
            (m, "wrong_site" if s != site else "foreign_meter") for s, g, m in named if g != gw
        }
        publish_all(broker, gw, [(topics.batch("parks", site, gw), payload)])
        digest = hashlib.sha256(payload).digest()
        stored, quarantined = _wait_for_outcome(engine, ts, digest, len(own), len(refused))
        assert stored == own
        assert quarantined == refused

    check()
    assert settle(engine, quiet_s=1.0) == count(engine)


def test_a_batch_of_10000_readings_is_stored_whole(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park, ingest: IngestProcess
) -> None:
    _, engine = park_db
    site = test_park.sites[0]
    ent = next(e for e in site.enterprises if len(e.meters) >= 2)
    ids = [m.id for m in ent.meters]
    start = int(BASE_TS.timestamp())
    n = BATCH_READINGS_DOCUMENTED
    items = [
        {"meter": ids[i % len(ids)], "ts": start + 60 * (i // len(ids)), "value": float(i)}
        for i in range(n)
    ]
    payload = json.dumps({"readings": items}).encode()
    assert 600_000 < len(payload) <= DEFAULT_MAX_PAYLOAD_BYTES
    publish_all(broker, ent.gateway_id, [(topics.batch("parks", site.id, ent.gateway_id), payload)])
    deadline = time.monotonic() + 60
    while count(engine) < n and count(engine, "quarantine") == 0:
        assert time.monotonic() < deadline, "the batch was never committed"
        time.sleep(0.1)
    assert count(engine, "quarantine") == 0
    assert count(engine) == n
