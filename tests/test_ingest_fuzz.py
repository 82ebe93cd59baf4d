"""Arbitrary bytes and JSON through the real broker into the real ingestor: it never
crashes, and every message ends stored or quarantined, never both, never neither."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from core import topics
from core.park.models import Park
from core.settings import Settings
from ingest.parse import MeterInfo, parse_message
from tests.ingest_harness import IngestProcess, gateway, publish_all
from tests.kit.broker import Broker
from tests.kit.database import park_database
from tests.kit.ingest import running_ingest

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
reading_like = st.fixed_dictionaries(
    {
        "value": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 10**6),
        "unit": st.sampled_from(["kWh", "Wh", "MWh", "m3", "kWhh", None]),
    },
    optional={"ts": json_values},
)
payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    reading_like.map(lambda v: {k: x for k, x in v.items() if x is not None}).map(
        lambda v: json.dumps({"ts": "AUTO", **v}, allow_nan=True).encode()
    ),
)


@pytest.fixture(scope="module")
def fuzz_stack(
    database_factory: Callable[[], Settings], test_park: Park, broker: Broker
) -> Iterator[tuple[Engine, IngestProcess]]:
    with (
        park_database(database_factory, test_park) as (settings_, engine),
        running_ingest(settings_, broker, "svc-ingest-4") as proc,
    ):
        yield engine, proc


_counter = iter(range(10**9))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(payloads, min_size=1, max_size=25))
def test_every_message_ends_stored_or_quarantined(
    batch: list[bytes], fuzz_stack: tuple[Engine, IngestProcess], broker: Broker, test_park: Park
) -> None:
    engine, proc = fuzz_stack
    gw, meters = gateway(test_park, index=9)
    meter = meters[0]
    topic = topics.reading("parks", "NCK", meter)
    messages = []
    for payload in batch:
        n = next(_counter)
        # Unique timestamps for reading-shaped payloads, so no two collide on (meter, ts).
        unique = str(1767571200 + n).encode()
        messages.append((topic, payload.replace(b'"AUTO"', unique) + b" " * (n % 2)))
    before = proc.messages_done()
    publish_all(broker, gw, messages)
    proc.wait_for_messages(before + len(messages))  # each one committed and acked
    registry = {meter: MeterInfo(meter, "NCK", "kWh", datetime(2020, 1, 1, tzinfo=UTC))}
    with engine.connect() as conn:
        for topic_, payload in messages:
            quarantined = conn.execute(
                text("SELECT count(*) FROM quarantine WHERE topic = :t AND payload = :p"),
                {"t": topic_, "p": payload},
            ).scalar_one()
            parsed = parse_message(topic_, payload, "parks", registry, datetime.now(UTC))
            stored = 0
            for reading in parsed.readings:
                value: Any = conn.execute(
                    text("SELECT value FROM readings WHERE meter_id = :m AND ts = :ts"),
                    {"m": reading.meter_id, "ts": reading.ts},
                ).scalar_one_or_none()
                assert value is not None and math.isclose(value, reading.value)
                stored += 1
            assert (stored, quarantined) in ((1, 0), (0, 1)), (payload, parsed)
    assert proc.proc is not None and proc.proc.poll() is None, "the ingestor crashed"
    assert proc.healthy()
