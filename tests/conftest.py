"""Fixtures on the real parts: the project's TimescaleDB instance (a fresh database
per test session, migrated) and a Mosquitto broker started per test session from
the project's own rendered configuration.

`scripts/test.sh` installs and starts the database instance before pytest runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from core import migrate
from core.park.loader import load_park, parse_park
from core.park.models import Park
from core.settings import Settings
from tests.api_support import ApiEnv, build
from tests.kit.broker import Broker, running_broker
from tests.kit.database import park_database
from tests.kit.ingest import IngestStack
from tests.kit.paths import SAMPLE_PARK


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


@pytest.fixture(scope="session")
def broker(test_park: Park) -> Iterator[Broker]:
    """The broker the tests share: each test keeps to its own gateways and users."""
    with running_broker(test_park) as b:
        yield b


@pytest.fixture
def own_broker(test_park: Park) -> Iterator[Broker]:
    """A broker of the test's own, for tests that crash or restart it or read its log."""
    with running_broker(test_park) as b:
        yield b


@pytest.fixture
def park_db(
    database_factory: Callable[[], Settings], test_park: Park
) -> Iterator[tuple[Settings, Engine]]:
    """A fresh migrated database holding the two-site test park."""
    with park_database(database_factory, test_park) as db:
        yield db


@pytest.fixture
def stack(park_db: tuple[Settings, Engine], broker: Broker, test_park: Park) -> IngestStack:
    """A fresh store of the test park on the shared broker, for ingestor tests."""
    return IngestStack(*park_db, broker, test_park)


@pytest.fixture
def own_stack(park_db: tuple[Settings, Engine], own_broker: Broker, test_park: Park) -> IngestStack:
    """A fresh store of the test park on a broker of the test's own."""
    return IngestStack(*park_db, own_broker, test_park)


@pytest.fixture(scope="module")
def api_env(database_factory: Callable[[], Settings], test_park: Park) -> Iterator[ApiEnv]:
    """The sample park priced by the real engine, with one API key per role; one per
    test module, so a module that changes factors cannot leak into another."""
    built = build(database_factory, test_park)
    yield built
    built.engine.dispose()
