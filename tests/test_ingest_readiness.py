"""`/readyz` of the ingestor: alive is not ready. Ready means the broker granted
every subscription, so what a gateway publishes from then on reaches ingest's
session; the tests' harness, the benchmarks and scripts/demo.sh wait on it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

from sqlalchemy import Engine

from core.settings import Settings
from tests.ingest_harness import IngestProcess
from tests.kit.broker import Broker, free_port
from tests.kit.paths import ROOT


def test_alive_but_not_ready_while_the_broker_is_unreachable(
    park_db: tuple[Settings, Engine], broker: Broker
) -> None:
    settings, _ = park_db
    nowhere = dataclasses.replace(broker, port=free_port())  # nothing listens there
    proc = IngestProcess(settings, nowhere)
    proc.health_port = free_port()
    proc.proc = subprocess.Popen([sys.executable, "-m", "cli", "ingest"], cwd=ROOT, env=proc.env())
    try:
        deadline = time.monotonic() + 30
        while not proc.healthy():
            assert time.monotonic() < deadline and proc.proc.poll() is None, "never alive"
            time.sleep(0.1)
        assert not proc.ready()
    finally:
        proc.stop()
