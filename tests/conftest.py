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
from sqlalchemy.exc import DBAPIError

from core import migrate
from core.broker.render import render_broker
from core.park.loader import load_park, parse_park
from core.park.models import Park
from core.park.repository import apply_park
from core.paths import mqtt_password_file
from core.settings import Settings
from tests.api_support import ApiEnv, build

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
            _drop_database(conn, name)
    admin.dispose()


def _drop_database(conn: Connection, name: str) -> None:
    """TimescaleDB's per-database scheduler runs as the superuser, so FORCE may not
    terminate it for us; it leaves once the database is being dropped, so retry."""
    for attempt in range(20):
        try:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 19:
                raise
            time.sleep(0.5)


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


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Broker:
    """A real Mosquitto process run with the project's rendered configuration."""

    port: int
    state_dir: Path
    config_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    prefix: str = "parks"

    def password(self, user: str) -> str:
        return mqtt_password_file(self.state_dir, user).read_text().strip()

    def start(self) -> None:
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([mosquitto, "-c", str(self.config_dir / "mosquitto.conf")])
        _wait_for_port(self.port)

    def stop(self) -> None:
        """Graceful stop: the broker saves its persistent sessions to disk."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def kill9(self) -> None:
        """A crash: nothing saved since the last autosave survives."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def log(self) -> str:
        return (self.config_dir / "mosquitto.log").read_text(errors="replace")


def two_site_park(sample: Park) -> Park:
    """The sample park plus a small second site, for partitioning and wrong-site tests."""
    data = sample.model_dump(mode="json")
    data["sites"].append(
        {
            "id": "DVU",
            "name": "Second test site",
            "timezone": "Asia/Ho_Chi_Minh",
            "enterprises": [
                {
                    "id": f"DVU-E{n}",
                    "name": f"Second site tenant {n}",
                    "industry": "garments",
                    "meters": [
                        {
                            "id": f"DVU-E{n}-M{m}",
                            "kind": "electricity",
                            "unit": "kWh",
                            "reading": "counter",
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        }
                        for m in range(1, 4)
                    ],
                }
                for n in range(1, 6)  # several, so delivery tests each own a gateway
            ],
        }
    )
    return parse_park(data)


@pytest.fixture(scope="session")
def test_park(sample_park: Park) -> Park:
    return two_site_park(sample_park)


def start_broker(park: Park) -> Broker:
    """Its directory is outside pytest's private tmp tree: a broker started as root
    drops to the `mosquitto` user, which must be able to reach its files."""
    base = Path(tempfile.mkdtemp(prefix="emissions-broker-"))
    os.chmod(base, 0o755)
    broker = Broker(free_port(), base / "state", base / "mosquitto")
    render_broker(
        park,
        broker.config_dir,
        state_dir=broker.state_dir,
        prefix="parks",
        bind="127.0.0.1",
        port=broker.port,
    )
    broker.start()
    return broker


@pytest.fixture(scope="session")
def broker(test_park: Park) -> Iterator[Broker]:
    b = start_broker(test_park)
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(b.config_dir.parent, ignore_errors=True)


@pytest.fixture
def park_db(
    database_factory: Callable[[], Settings], test_park: Park
) -> Iterator[tuple[Settings, Engine]]:
    """A fresh migrated database holding the two-site test park."""
    settings = database_factory()
    eng = create_engine(settings.database_url)
    migrate.upgrade(eng)
    with eng.begin() as conn:
        apply_park(conn, test_park)
    yield settings, eng
    eng.dispose()


@pytest.fixture(scope="module")
def api_env(database_factory: Callable[[], Settings], test_park: Park) -> Iterator[ApiEnv]:
    """The sample park priced by the real engine, with one API key per role; one per
    test module, so a module that changes factors cannot leak into another."""
    built = build(database_factory, test_park)
    yield built
    built.engine.dispose()
