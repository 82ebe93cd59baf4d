"""The real ingestor process on a fresh broker session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.settings import Settings
from tests.ingest_harness import IngestProcess, forget_session
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
