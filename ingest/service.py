"""Wires the ingestor together and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import signal
import threading
from datetime import timedelta

from core.db import make_engine, wait_for_database
from core.failures import StartupFailure
from core.health import serve_health
from core.logs import get_logger
from core.settings import Settings
from ingest.meters import MeterRegistry
from ingest.mqtt_client import IngestClient
from ingest.parse import Limits
from ingest.pipeline import BatchPolicy, Pipeline
from ingest.positions import Committed, committed_message
from ingest.quarantine import QuarantineGate, QuarantinePolicy
from ingest.writer import BatchWriter

log = get_logger("ingest")


def build(settings: Settings) -> tuple[Pipeline, IngestClient]:
    engine = make_engine(settings, pool_size=1)
    wait_for_database(engine, settings.startup_wait_s)
    registry = MeterRegistry(engine, settings.ingest_sites)
    registry.refresh()
    clients: list[IngestClient] = []

    def ack(tokens: list[object]) -> None:
        clients[0].ack(tokens)

    def publish_committed(position: Committed) -> None:
        clients[0].publish_retained(*committed_message(settings.mqtt_topic_prefix, position))

    pipeline = Pipeline(
        BatchWriter(settings.libpq_url, QuarantineGate(QuarantinePolicy.from_settings(settings))),
        registry,
        settings.mqtt_topic_prefix,
        Limits(
            settings.ingest_max_payload_bytes,
            timedelta(seconds=settings.ingest_max_future_skew_s),
        ),
        BatchPolicy(
            settings.ingest_batch_readings,
            settings.ingest_max_inflight,
            settings.ingest_batch_deadline_ms / 1000,
        ),
        ack=ack,
        refresh_s=settings.ingest_meter_refresh_s,
        publish_committed=publish_committed,
    )
    client = IngestClient(settings, pipeline.submit, lambda: sorted(registry.routes))
    clients.append(client)
    log.info("ingest_ready", meters=len(registry.meters), sites=settings.ingest_sites or "all")
    return pipeline, client


class _StoppedWhileStarting(Exception):
    """SIGTERM or SIGINT arrived before the broker accepted the first login."""


def run(settings: Settings) -> None:
    pipeline, client = build(settings)
    # Measured (bench/ingest.py): the cyclic collector took a fifth of the CPU with
    # pauses of ~100 ms. Readings and messages are acyclic and freed by reference
    # counting, so collect rarely and never rescan the start-up objects.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    stop = threading.Event()
    starting = threading.Event()
    starting.set()

    def on_signal(*_: object) -> None:
        """A stop while the first login still waits for the broker ends the wait."""
        stop.set()
        if starting.is_set():
            raise _StoppedWhileStarting

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = serve_health(
        settings.metrics_host,
        settings.ingest_health_port,
        pipeline.alive,
        lambda: pipeline.alive() and client.subscribed.is_set(),
        setting="EMISSIONS_INGEST_HEALTH_PORT",
    )
    pipeline.start()
    try:
        client.start()
        starting.clear()
    except _StoppedWhileStarting:
        log.info("ingest_stopped_while_starting")
        pipeline.stop()
        server.shutdown()
        return
    except StartupFailure:
        pipeline.stop()
        server.shutdown()
        raise
    stop.wait()
    log.info("ingest_stopping")
    pipeline.stop()
    client.stop()
    server.shutdown()
