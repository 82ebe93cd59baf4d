"""The database, broker and work folder a benchmark with MQTT runs against, together."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.stack.broker import Broker, start_broker
from bench.stack.database import Conn, create_database, db_connect
from core.park.models import Park
from core.settings import Settings


@dataclass(frozen=True)
class LocalStack:
    settings: Settings  # the throw-away database
    broker: Broker
    conn: Conn  # autocommit, for counts and probes
    workdir: Path  # the broker's files and the services' logs


def local_stack(park: Park, stack: contextlib.ExitStack, prefix: str) -> LocalStack:
    """A throw-away database with `park`, a private broker for it and a temporary
    work folder; all removed when `stack` closes."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, base, ignore_errors=True)
    os.chmod(base, 0o755)  # a broker started as root drops to `mosquitto`  # noqa: S103
    settings = create_database(park, stack)
    broker = start_broker(park, base, stack)
    conn = db_connect(settings)
    stack.callback(conn.close)
    return LocalStack(settings, broker, conn, base)
