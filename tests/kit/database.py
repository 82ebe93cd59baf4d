"""A throw-away database of the project's instance, migrated, holding a park."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine

from core import migrate
from core.park.models import Park
from core.park.repository import apply_park
from core.settings import Settings


@contextmanager
def park_database(
    database_factory: Callable[[], Settings], park: Park, **engine_options: Any
) -> Iterator[tuple[Settings, Engine]]:
    """A fresh database migrated to head with `park` applied; its engine is disposed of
    when the block ends (the factory drops the database at the end of the session)."""
    settings = database_factory()
    engine = create_engine(settings.database_url, **engine_options)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        apply_park(conn, park)
    try:
        yield settings, engine
    finally:
        engine.dispose()
