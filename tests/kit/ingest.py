"""The real ingestor process on a fresh broker session, and what it runs against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from core.park.models import Park
from core.settings import Settings
from tests.ingest_harness import IngestProcess, forget_session, gateway
from tests.kit.broker import Broker


@contextmanager
def running_ingest(
    settings: Settings, broker: Broker, user: str = "svc-ingest-1", **env: str
) -> Iterator[IngestProcess]:
    """`emissions ingest` as `user`, ready (every subscription granted) when the block
    starts and stopped when it ends. The broker first forgets what it queued for `user`
    while that user was offline, so other tests' messages never reach this one."""
    forget_session(broker, user)
    ingest = IngestProcess(settings, broker, user=user, extra_env=env)
    try:
        ingest.start()
        yield ingest
    finally:
        ingest.stop()


@dataclass(frozen=True)
class IngestStack:
    """A fresh store holding the test park and a broker: what an ingestor runs
    against, so a delivery test names one thing rather than four."""

    settings: Settings
    engine: Engine
    broker: Broker
    park: Park

    def ingest(
        self, user: str = "svc-ingest-1", **env: str
    ) -> AbstractContextManager[IngestProcess]:
        return running_ingest(self.settings, self.broker, user, **env)

    def gateway(self, site_id: str = "NCK", index: int = 0) -> tuple[str, list[str]]:
        return gateway(self.park, site_id, index)
