"""Wires the ingestor together and runs it (`core.runner`) until SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import threading
from datetime import timedelta

from core.db import ready_engine
from core.logs import get_logger
from core.runner import HealthPort, run_service, wait_awake
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
    engine = ready_engine(settings, pool_size=1)
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


class Ingestor:
    """The pipeline and its MQTT client as one service for `core.runner`."""

    def __init__(self, pipeline: Pipeline, client: IngestClient) -> None:
        self.pipeline = pipeline
        self.client = client

    def alive(self) -> bool:
        return self.pipeline.alive()

    def ready(self) -> bool:
        return self.pipeline.alive() and self.client.subscribed.is_set()

    def start(self, stop: threading.Event) -> None:
        self.pipeline.start()
        try:
            self.client.start()
        except BaseException:  # a failed login, or a stop while it waits for the broker
            self.pipeline.stop()
            raise

    def wait(self, stop: threading.Event) -> None:
        while not wait_awake(stop):
            pass

    def stop(self) -> None:
        log.info("ingest_stopping")
        self.pipeline.stop()
        self.client.stop()


def run(settings: Settings) -> None:
    service = Ingestor(*build(settings))
    # Measured (bench.ingest): the cyclic collector took a fifth of the CPU with
    # pauses of ~100 ms. Readings and messages are acyclic and freed by reference
    # counting, so collect rarely and never rescan the start-up objects.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    health = HealthPort(
        settings.metrics_host, settings.ingest_health_port, "EMISSIONS_INGEST_HEALTH_PORT"
    )
    run_service("ingest", service, health)
