"""Acknowledgements reach the broker: a batch's PUBACKs go out together after its
commit (ingest/mqtt_client.py), and a restarted ingestor is not sent again what it
had stored and acknowledged."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from core.park.models import Park
from core.settings import Settings
from tests.ingest_harness import (
    IngestProcess,
    gateway,
    publish_all,
    single_messages,
    wait_for_count,
)
from tests.kit.broker import Broker
from tests.kit.ingest import running_ingest


def _messages_received(proc: IngestProcess) -> float:
    match = re.search(r"^emissions_ingest_messages_total ([0-9.e+]+)$", proc.metrics(), re.M)
    return float(match.group(1)) if match else 0.0


def test_acknowledged_messages_are_not_delivered_again_after_a_restart(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park
) -> None:
    settings, engine = park_db
    _, meters = gateway(test_park)
    with running_ingest(settings, broker, "svc-ingest-2") as proc:
        # Meter topics are published by the meter's gateway user.
        gw, _ = gateway(test_park)
        publish_all(broker, gw, list(single_messages("NCK", meters, 3000)))
        assert wait_for_count(engine, 3000) == 3000
        proc.stop()  # graceful: the last batch is committed and acknowledged
        proc.start()
        publish_all(broker, gw, list(single_messages("NCK", meters, 1, start=3000)))
        assert wait_for_count(engine, 3001) == 3001
        # Only the new message arrived: nothing stored and acked before came back.
        assert _messages_received(proc) == 1.0
