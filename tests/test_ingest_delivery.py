"""Zero loss, exactly once: the real ingestor process on the real broker and store.

Each test gets a fresh migrated database with the park applied, and its own
ingest session (a fresh broker user), so queued messages never leak between tests.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from contextlib import AbstractContextManager

from sqlalchemy import Engine, text

from core import topics
from tests.ingest_harness import (
    IngestProcess,
    batch_messages,
    count,
    publish_all,
    settle,
    single_messages,
    wait_for_count,
)
from tests.kit.ingest import IngestStack

_ingest_users = itertools.cycle(["svc-ingest-1", "svc-ingest-2", "svc-ingest-3", "svc-ingest-4"])


def _ingest(stack: IngestStack, **env: str) -> AbstractContextManager[IngestProcess]:
    """The ingestor for the block, as the next of the service users in turn."""
    return stack.ingest(next(_ingest_users), **env)


def _wait_for_progress(engine: Engine, since: int, step: int, timeout: float = 60) -> int:
    """The store's count once it grew by `step` since `since`: data is flowing."""
    deadline = time.monotonic() + timeout
    current = count(engine)
    while current < since + step:
        assert time.monotonic() < deadline, f"the store stuck at {current} readings"
        time.sleep(0.02)
        current = count(engine)
    return current


def test_d1_kill_9_five_times_loses_nothing_and_duplicates_nothing(own_stack: IngestStack) -> None:
    gw, meters = own_stack.gateway()
    messages = list(single_messages("NCK", meters, 100_000))
    with _ingest(own_stack) as ingest:
        publisher = threading.Thread(target=publish_all, args=(own_stack.broker, gw, messages))
        publisher.start()
        stored_at_kill = 0
        for _ in range(5):
            # Kill while the ingestor is committing: the store moved since the last
            # kill and has not got everything yet (the rest is in flight: still being
            # published, or queued in the broker).
            stored_at_kill = _wait_for_progress(own_stack.engine, stored_at_kill, 2_000)
            assert stored_at_kill < 100_000, "nothing was in flight"
            ingest.kill9()
            ingest.start()
        publisher.join()
        assert wait_for_count(own_stack.engine, 100_000, timeout=120) == 100_000
        assert settle(own_stack.engine) == 100_000
        with own_stack.engine.connect() as conn:
            distinct = conn.execute(
                text("SELECT count(DISTINCT (meter_id, ts)) FROM readings")
            ).scalar_one()
        assert distinct == 100_000
        assert count(own_stack.engine, "quarantine") == 0


def test_d2_backlog_while_stopped_is_delivered_without_drops(own_stack: IngestStack) -> None:
    gw, meters = own_stack.gateway()
    with _ingest(own_stack) as ingest:
        ingest.stop()  # the broker keeps its persistent subscribed session: the backlog
        publish_all(own_stack.broker, gw, list(single_messages("NCK", meters, 100_000)))
        ingest.start()
        assert wait_for_count(own_stack.engine, 100_000, timeout=120) == 100_000
        assert settle(own_stack.engine) == 100_000
    log = own_stack.broker.log().lower()
    assert "dropped" not in log
    assert "dropping" not in log


def test_d4_database_connections_reset_for_10_s_recovers_without_restart(
    stack: IngestStack,
) -> None:
    gw, meters = stack.gateway(index=1)
    messages = batch_messages("NCK", gw, meters, 30_000, per_message=10)
    with _ingest(stack) as ingest:
        publisher = threading.Thread(target=publish_all, args=(stack.broker, gw, messages))
        publisher.start()
        _wait_for_progress(stack.engine, 0, 500)  # the outage hits a running stream
        killed = _reset_connections_for(stack.engine, stack.settings.db_name, seconds=10)
        publisher.join()
        assert killed > 0, "the outage never hit the ingestor"
        assert ingest.proc is not None and ingest.proc.poll() is None, "ingest died"
        assert wait_for_count(stack.engine, 30_000, timeout=60) == 30_000
        assert settle(stack.engine) == 30_000
        assert "emissions_ingest_database_errors_total" in ingest.metrics()


def _reset_connections_for(engine: Engine, db_name: str, seconds: float) -> int:
    """Terminate the ingestor's database connections again and again for `seconds`;
    returns how many it terminated."""
    deadline = time.monotonic() + seconds
    killed = 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while time.monotonic() < deadline:
            killed += int(
                conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'park-emissions-ingest' AND datname = :db"
                    ),
                    {"db": db_name},
                ).scalar_one()
            )
            time.sleep(0.05)
    return killed


def test_d7_broker_restart_mid_stream_loses_nothing(own_stack: IngestStack) -> None:
    gw, meters = own_stack.gateway(index=2)
    messages = list(single_messages("NCK", meters, 30_000))
    with _ingest(own_stack):
        publisher = threading.Thread(target=publish_all, args=(own_stack.broker, gw, messages))
        publisher.start()
        stored = _wait_for_progress(own_stack.engine, 0, 2_000)
        assert publisher.is_alive() and stored < 30_000, "nothing was in flight"
        own_stack.broker.stop()
        assert count(own_stack.engine) < 30_000
        own_stack.broker.start()
        publisher.join()
        assert wait_for_count(own_stack.engine, 30_000, timeout=90) == 30_000
        assert settle(own_stack.engine) == 30_000


def test_d10_everything_twice_is_stored_once(stack: IngestStack) -> None:
    gw, meters = stack.gateway(index=3)
    messages = batch_messages("NCK", gw, meters, 10_000, per_message=25)
    with _ingest(stack) as ingest:
        publish_all(stack.broker, gw, messages + messages)
        assert wait_for_count(stack.engine, 10_000) == 10_000
        assert settle(stack.engine) == 10_000
        metrics = ingest.metrics()
    assert 'emissions_ingest_readings_total{result="duplicate"} 10000.0' in metrics
    assert count(stack.engine, "reading_conflicts") == 0


def test_different_value_for_a_stored_reading_is_a_conflict(stack: IngestStack) -> None:
    gw, meters = stack.gateway(index=4)
    original = batch_messages("NCK", gw, meters, 100, per_message=10)
    changed = [
        (topic, payload.replace(b'"value": 5.0', b'"value": 5.5')) for topic, payload in original
    ]
    with _ingest(stack):
        publish_all(stack.broker, gw, original)
        assert wait_for_count(stack.engine, 100) == 100
        publish_all(stack.broker, gw, changed)
        assert wait_for_count(stack.engine, 1, table="reading_conflicts") == 1
        assert settle(stack.engine) == 100
    with stack.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM reading_conflicts")).one()
        stored = conn.execute(
            text("SELECT value FROM readings WHERE meter_id = :m AND ts = :ts"),
            {"m": row.meter_id, "ts": row.ts},
        ).scalar_one()
    assert (row.stored_value, row.rejected_value, stored) == (5.0, 5.5, 5.0)


POISON = [
    ("not_json", b"\x00\x01 definitely not json"),
    ("non_finite_value", b'{"ts": 1767571200, "value": NaN}'),
    ("non_finite_value", b'{"ts": 1767571200, "value": Infinity}'),
    ("negative_value", b'{"ts": 1767571200, "value": -4}'),
    ("invalid_timestamp", b'{"ts": "2026-01-05T08:00:00", "value": 1}'),
    ("future_timestamp", b'{"ts": 4102444800, "value": 1}'),
    ("before_commissioning", b'{"ts": 946684800, "value": 1}'),
    ("unit_mismatch", b'{"ts": 1767571200, "value": 1, "unit": "kg"}'),
    ("invalid_payload", b'{"ts": 1767571200, "value": "12"}'),
    ("oversized", b'{"ts": 1767571200, "value": 1, "pad": "' + b"x" * 1_100_000 + b'"}'),
]


def test_d11_one_percent_poison_is_quarantined_once_and_the_rest_stored(stack: IngestStack) -> None:
    gw, meters = stack.gateway(index=5)
    good = list(single_messages("NCK", meters, 9_900))
    poison = []
    for i in range(100):
        reason, payload = POISON[i % len(POISON)]
        # Distinct bytes per message, so each poison message is its own quarantine row.
        payload = (
            payload.replace(b"1767571200", str(1767571200 + i).encode())
            .replace(b"not json", b"not json %d" % i)
            .replace(b"946684800", str(946684800 + i).encode())
            .replace(b"4102444800", str(4102444800 + i).encode())
            .replace(b'"value": 1}', b'"value": 1, "n": %d}' % i)
        )
        poison.append((reason, (topics.reading("parks", "NCK", meters[i % len(meters)]), payload)))
    messages = good[:]
    for i, (_, message) in enumerate(poison):
        messages.insert(i * 99, message)
    with _ingest(stack):
        publish_all(stack.broker, gw, messages)
        assert wait_for_count(stack.engine, 9_900) == 9_900
        assert wait_for_count(stack.engine, 100, table="quarantine") == 100
        assert settle(stack.engine, "quarantine", quiet_s=3) == 100  # no redelivery loop
        assert count(stack.engine) == 9_900
    with stack.engine.connect() as conn:
        by_reason: dict[str, int] = dict(
            conn.execute(text("SELECT reason, count(*) FROM quarantine GROUP BY reason")).all()
        )
        payloads = set(conn.execute(text("SELECT payload FROM quarantine")).scalars())
    expected: dict[str, int] = {}
    for reason, _ in poison:
        expected[reason] = expected.get(reason, 0) + 1
    assert by_reason == expected
    cap = stack.settings.ingest_quarantine_max_payload_bytes  # oversized ones are kept cut
    assert payloads == {bytes(m[1])[:cap] for _, m in poison}


def test_batch_with_other_sites_meter_keeps_the_rest(stack: IngestStack) -> None:
    gw, meters = stack.gateway(index=6)
    _, other_site_meters = stack.gateway(site_id="DVU")
    items = [
        {"meter": meters[0], "ts": 1767571200, "value": 1.0},
        {"meter": other_site_meters[0], "ts": 1767571200, "value": 2.0},
        {"meter": "NO-SUCH-METER", "ts": 1767571200, "value": 3.0},
        {"meter": meters[0], "ts": 1767571260, "value": 4.0, "firmware": "1.2"},
    ]
    batch = json.dumps({"readings": items}).encode()
    with _ingest(stack):
        publish_all(stack.broker, gw, [(f"parks/NCK/gateways/{gw}", batch)])
        assert wait_for_count(stack.engine, 2, table="quarantine") == 2
        assert wait_for_count(stack.engine, 2) == 2
    with stack.engine.connect() as conn:
        reasons = sorted(conn.execute(text("SELECT reason FROM quarantine")).scalars())
    assert reasons == ["unknown_meter", "wrong_site"]


def test_d12_batch_larger_than_the_in_flight_window_does_not_stall(stack: IngestStack) -> None:
    gw, meters = stack.gateway(index=7)
    small_window = {
        "EMISSIONS_MQTT_PROTOCOL": "5",
        "EMISSIONS_INGEST_MAX_INFLIGHT": "20",
        "EMISSIONS_INGEST_BATCH_READINGS": "5000",
        "EMISSIONS_INGEST_BATCH_DEADLINE_MS": "200",
    }
    with _ingest(stack, **small_window):
        publish_all(stack.broker, gw, list(single_messages("NCK", meters, 2_000)))
        assert wait_for_count(stack.engine, 2_000, timeout=30) == 2_000


def test_two_processes_on_two_partitions_ingest_together(stack: IngestStack) -> None:
    gw_a, meters_a = stack.gateway(site_id="NCK", index=8)
    gw_b, meters_b = stack.gateway(site_id="DVU")
    threads = [
        threading.Thread(
            target=publish_all,
            args=(stack.broker, gw_a, batch_messages("NCK", gw_a, meters_a, 20_000, 50)),
        ),
        threading.Thread(
            target=publish_all,
            args=(stack.broker, gw_b, batch_messages("DVU", gw_b, meters_b, 20_000, 50)),
        ),
    ]
    with (
        _ingest(stack, EMISSIONS_INGEST_SITES="NCK") as a,
        _ingest(stack, EMISSIONS_INGEST_SITES="DVU") as b,
    ):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wait_for_count(stack.engine, 40_000) == 40_000
        assert settle(stack.engine) == 40_000
        for proc in (a, b):
            stored = [
                line
                for line in proc.metrics().splitlines()
                if line.startswith('emissions_ingest_readings_total{result="stored"}')
            ]
            assert stored == ['emissions_ingest_readings_total{result="stored"} 20000.0']
