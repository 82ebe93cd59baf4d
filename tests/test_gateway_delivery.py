"""End-to-end delivery through broker crashes: the simulator's gateway client (seq,
epoch, on-disk buffer) against the real broker, ingestor and store.

Mosquitto saves its queues only every autosave interval, so `kill -9` loses what
it acknowledged since; the gateway keeps every batch until the service's
`committed` position covers it and republishes after each reconnect.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, text

from core.park.models import Park
from core.settings import Settings
from simulator.publisher import MqttSink
from tests.ingest_harness import (
    batch_messages,
    count,
    gateway,
    settle,
)
from tests.kit.broker import Broker
from tests.kit.ingest import running_ingest

READINGS = 20_000
ROUNDS = 5


def test_broker_kill_9_five_times_through_a_backlog_stores_each_reading_once(
    park_db: tuple[Settings, Engine], own_broker: Broker, test_park: Park, tmp_path: Path
) -> None:
    settings, engine = park_db
    gw, meters = gateway(test_park, site_id="DVU", index=2)
    messages = batch_messages("DVU", gw, meters, READINGS, per_message=50)
    per_round = len(messages) // ROUNDS
    buffer = tmp_path / "buffer.sqlite"
    with running_ingest(settings, own_broker, "svc-ingest-2") as ingest:
        ingest.stop()  # its persistent subscription: the backlog queues for it ...
        own_broker.stop()  # ... saved by a clean restart, as a long-running broker has it
        own_broker.start()
        sink = _gateway_client(own_broker, gw, buffer)
        try:
            for n in range(ROUNDS):
                for topic, payload in messages[n * per_round : (n + 1) * per_round]:
                    sink.publish(gw, topic, payload)
                sink.drain()  # after a kill: once reconnected and everything republished
                # In flight when the broker dies: acknowledged by it, committed by nobody
                # (ingest is stopped), so only the gateway's buffer still has it all.
                assert sink.unconfirmed == (n + 1) * per_round
                assert count(engine) == 0
                own_broker.kill9()
                if n < ROUNDS - 1:
                    own_broker.start()
            # The gateway is switched off before the broker comes back: what reaches the
            # store now is what the broker itself kept through five crashes.
            sink.close()
            own_broker.start()
            ingest.start()
            kept = settle(engine, quiet_s=2.0)
            sink = _gateway_client(own_broker, gw, buffer)  # back on, same buffer file
            sink.wait_committed(120)
            assert sink.unconfirmed == 0
            with engine.connect() as conn:
                stored, distinct = conn.execute(
                    text("SELECT count(*), count(DISTINCT (meter_id, ts)) FROM readings")
                ).one()
            assert (stored, distinct) == (READINGS, READINGS)
            assert count(engine, "quarantine") == 0
            found = re.search(r'readings_total\{result="duplicate"\} (\S+)', ingest.metrics())
            print(  # noqa: T201 - the figures of issue 12, shown with `pytest -s`
                f"\nkill -9 x{ROUNDS} with {READINGS} readings in flight: the broker kept {kept}, "
                f"stored {stored}, distinct {distinct}, republished duplicates dropped "
                f"{float(found.group(1)) if found else 0:.0f}"
            )
        finally:
            sink.close()


def _gateway_client(broker: Broker, gw: str, buffer: Path) -> MqttSink:
    sink = MqttSink(
        "127.0.0.1", broker.port, {gw: broker.password(gw)}, buffer_path=buffer, window=50
    )
    sink.connect()
    return sink
