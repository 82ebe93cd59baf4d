"""Fixtures on the real parts: the project's TimescaleDB instance (a fresh database
per test session, migrated) and a Mosquitto broker started per test session from
the project's own rendered configuration.

`scripts/test.sh` installs and starts the database instance before pytest runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from core import migrate
from core.broker.render import render_broker
from core.park.loader import load_park
from core.park.models import Park
from core.paths import mqtt_password_file
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PARK = ROOT / "config" / "park.yaml"


def _admin_engine() -> Engine:
    return create_engine(Settings().database_url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def database_factory() -> Iterator[Callable[[], Settings]]:
    """Creates throw-away databases (timescaledb comes from the instance's template1)."""
    admin = _admin_engine()
    created: list[str] = []

    def create() -> Settings:
        name = f"emissions_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return Settings(db_name=name)

    yield create
    with admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def settings(database_factory: Callable[[], Settings]) -> Settings:
    return database_factory()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = create_engine(settings.database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        trans = connection.begin()
        try:
            yield connection
        finally:
            trans.rollback()


@pytest.fixture(scope="session")
def sample_park() -> Park:
    return load_park(SAMPLE_PARK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    state_dir: Path
    config_dir: Path
    prefix: str = "parks"

    def password(self, user: str) -> str:
        return mqtt_password_file(self.state_dir, user).read_text().strip()


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on {port}")


@pytest.fixture(scope="session")
def broker(sample_park: Park) -> Iterator[Broker]:
    """A real Mosquitto with the project's rendered configuration on a free port.

    Its directory is outside pytest's private tmp tree: a broker started as root
    drops to the `mosquitto` user, which must be able to reach its files."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    base = Path(tempfile.mkdtemp(prefix="emissions-broker-"))
    os.chmod(base, 0o755)
    state_dir, config_dir = base / "state", base / "mosquitto"
    port = free_port()
    render_broker(
        sample_park, config_dir, state_dir=state_dir, prefix="parks", bind="127.0.0.1", port=port
    )
    proc = subprocess.Popen([mosquitto, "-c", str(config_dir / "mosquitto.conf")])
    try:
        _wait_for_port(port)
        yield Broker("127.0.0.1", port, state_dir, config_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
