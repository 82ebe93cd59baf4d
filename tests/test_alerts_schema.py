"""The alert schema (migration 0005 on top of 0001's alerts tables): the database
itself refuses a second open alert per (rule, subject); the migration reverses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from core import migrate
from core.settings import Settings
from tests.alerts_harness import SITE, alert_db


def test_the_database_refuses_a_second_open_alert(
    database_factory: Callable[[], Settings],
) -> None:
    with alert_db(database_factory) as (_, db):
        insert = text(
            "INSERT INTO alerts (rule, subject, site_id, state) VALUES ('r', 's', :site, 'firing')"
        )
        with db.begin() as conn:
            conn.execute(insert, {"site": SITE})
        with pytest.raises(IntegrityError), db.begin() as conn:
            conn.execute(insert, {"site": SITE})


def test_migration_0005_downgrades_and_upgrades_again(
    database_factory: Callable[[], Settings],
) -> None:
    engine = create_engine(database_factory().database_url)
    tables = text(
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('site_alert_rules', "
        "'alert_conditions', 'alert_outbox', 'alert_deliveries', 'alert_dead_letters')"
    )
    try:
        migrate.upgrade(engine, "0005")
        with engine.connect() as conn:
            assert conn.execute(tables).scalar_one() == 5
        migrate.downgrade(engine, "0004")
        with engine.connect() as conn:
            assert conn.execute(tables).scalar_one() == 0
            columns = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name = 'alerts' "
                    "AND column_name IN ('details', 'last_notified_at')"
                )
            ).scalar_one()
            assert columns == 0
        migrate.upgrade(engine, "0005")
        assert migrate.current_revision(engine) == "0005"
    finally:
        engine.dispose()
