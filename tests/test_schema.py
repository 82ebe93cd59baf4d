"""The schema on a real TimescaleDB: migrations both ways, the readings hypertable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import IntegrityError

from core import migrate
from core.settings import Settings
from tests.test_park_apply import CONFIG_TABLES

EXPECTED_TABLES = {
    *CONFIG_TABLES,  # what the park file configures
    "gateway_devices",
    "meter_replacements",
    "readings",
    "quarantine",
    "reading_conflicts",
    "gateway_positions",
    "data_quality_events",
    "accepted_intervals",
    "hourly_emissions",
    "alerts",
    "alert_events",
    "api_keys",
    "dirty_meter_hours",
    "meter_engine_state",
    "enterprise_hourly",
    "site_hourly",
    "totals_versions",
    "site_alert_rules",
    "alert_conditions",
    "alert_outbox",
    "alert_deliveries",
    "alert_dead_letters",
    "toe_factors",
    "production_allocations",
    "report_submissions",
    "quarantine_drops",
    "console_users",
}


def _tables(conn: Connection) -> set[str]:
    return set(
        conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
    ) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(database_factory: Callable[[], Settings]) -> None:
    eng = create_engine(database_factory().database_url)
    try:
        migrate.upgrade(eng)
        with eng.connect() as conn:
            assert _tables(conn) == EXPECTED_TABLES
        assert migrate.current_revision(eng) == "0013"
        migrate.downgrade(eng, "base")
        with eng.connect() as conn:
            assert _tables(conn) == set()
            hypertables = conn.execute(
                text("SELECT count(*) FROM timescaledb_information.hypertables")
            ).scalar_one()
            assert hypertables == 0
        assert migrate.current_revision(eng) is None
        migrate.upgrade(eng)
        assert migrate.current_revision(eng) == "0013"
    finally:
        eng.dispose()


def test_readings_is_a_hypertable_on_ts(conn: Connection) -> None:
    row = conn.execute(
        text(
            "SELECT d.column_name FROM timescaledb_information.dimensions d "
            "WHERE d.hypertable_name = 'readings'"
        )
    ).one()
    assert row.column_name == "ts"


def test_readings_are_unique_per_meter_and_ts(conn: Connection) -> None:
    ts = datetime(2026, 1, 5, 1, tzinfo=UTC)
    insert = text("INSERT INTO readings (meter_id, ts, value) VALUES ('M', :ts, :v)")
    conn.execute(insert, {"ts": ts, "v": 1.0})
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert, {"ts": ts, "v": 2.0})


def test_one_open_alert_per_rule_and_subject(conn: Connection) -> None:
    conn.execute(text("INSERT INTO sites (id, name, timezone) VALUES ('S', 'S', 'UTC')"))
    insert = text(
        "INSERT INTO alerts (rule, subject, site_id, state) VALUES ('drift', 'S', 'S', :state)"
    )
    conn.execute(insert, {"state": "resolved"})
    conn.execute(insert, {"state": "firing"})
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert, {"state": "acknowledged"})
