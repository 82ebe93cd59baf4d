"""Grafana's login reads what the dashboards need and nothing else: no writes, no
DDL, no API keys, no raw quarantined payloads, no notification targets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from core import migrate
from core.settings import Settings
from tests.grafana_support import reader_url

READER = "emissions_reader"
READABLE = {
    "sites", "enterprises", "meters", "meter_replacements", "emission_factors",
    "emission_factor_values", "roadmaps", "roadmap_milestones", "readings",
    "reading_conflicts", "data_quality_events", "hourly_emissions", "enterprise_hourly",
    "site_hourly", "alerts", "alert_events", "dirty_meter_hours", "meter_engine_state",
    "alert_conditions", "alert_outbox", "quarantine_drops",
}  # fmt: skip
COLUMNS_ONLY = {"quarantine", "alert_deliveries"}

FORBIDDEN = [
    "INSERT INTO sites (id, name, timezone) VALUES ('X', 'x', 'UTC')",
    "UPDATE meters SET active = false",
    "DELETE FROM readings",
    "INSERT INTO readings (meter_id, ts, value) VALUES ('m', now(), 1)",
    "TRUNCATE alerts CASCADE",
    "UPDATE alerts SET state = 'resolved'",
    "CREATE TABLE public.grafana_was_here (x int)",
    "CREATE VIEW public.grafana_view AS SELECT 1 AS x",
    "CREATE FUNCTION public.grafana_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER TABLE meters ADD COLUMN grafana int",
    "CREATE INDEX grafana_idx ON readings (value)",
    "DROP TABLE readings",
    "GRANT SELECT ON api_keys TO PUBLIC",
    "SELECT * FROM api_keys",
    "SELECT key_hash FROM api_keys",
    "SELECT payload FROM quarantine",
    "SELECT * FROM quarantine",
    "SELECT target, last_error FROM alert_deliveries",
    "SELECT * FROM alert_dead_letters",
    "SELECT * FROM site_alert_rules",
    "SELECT * FROM alembic_version",
]


@pytest.fixture(scope="module")
def migrated(database_factory: Callable[[], Settings]) -> Iterator[tuple[Engine, Engine]]:
    settings = database_factory()
    owner = create_engine(settings.database_url)
    migrate.upgrade(owner)
    reader = create_engine(reader_url(settings))
    yield owner, reader
    reader.dispose()
    owner.dispose()


def _sqlstate(reader: Engine, sql: str, read_write: bool = True) -> str | None:
    with reader.connect() as conn, conn.begin():
        if read_write:  # so a refusal shows the missing privilege, not the read-only default
            conn.execute(text("SET TRANSACTION READ WRITE"))
        try:
            conn.execute(text(sql))
        except DBAPIError as exc:
            return getattr(exc.orig, "sqlstate", None)
    return None


@pytest.mark.parametrize("sql", FORBIDDEN)
def test_the_reader_lacks_the_privilege(migrated: tuple[Engine, Engine], sql: str) -> None:
    assert _sqlstate(migrated[1], sql) == "42501"  # insufficient_privilege


def test_the_login_defaults_to_read_only_transactions(migrated: tuple[Engine, Engine]) -> None:
    sql = "INSERT INTO sites (id, name, timezone) VALUES ('X', 'x', 'UTC')"
    assert _sqlstate(migrated[1], sql, read_write=False) == "25006"  # read_only_sql_transaction


def test_the_reader_has_select_on_exactly_the_dashboard_tables(
    migrated: tuple[Engine, Engine],
) -> None:
    owner, reader = migrated
    with owner.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT table_name, string_agg(DISTINCT privilege_type, ',') AS privileges "
                "FROM information_schema.role_table_grants "
                "WHERE grantee = :r AND table_schema = 'public' GROUP BY table_name"
            ),
            {"r": READER},
        ).all()
        columns = conn.execute(
            text(
                "SELECT DISTINCT table_name FROM information_schema.column_privileges "
                "WHERE grantee = :r AND table_schema = 'public'"
            ),
            {"r": READER},
        ).scalars()
        assert set(columns) == READABLE | COLUMNS_ONLY
    assert {t.table_name: t.privileges for t in tables} == dict.fromkeys(READABLE, "SELECT")
    with reader.connect() as conn:
        for table in READABLE:
            conn.execute(text(f"SELECT * FROM {table} LIMIT 1"))
        conn.execute(text("SELECT reason, count(*) FROM quarantine GROUP BY reason"))
        conn.execute(text("SELECT channel, state FROM alert_deliveries"))
        assert conn.execute(text("SELECT roadmap_budget_tco2e('none', now(), now())")).one()


def test_downgrade_revokes_and_upgrade_grants_again(migrated: tuple[Engine, Engine]) -> None:
    owner, reader = migrated
    migrate.downgrade(owner, "0005")
    try:
        assert _sqlstate(reader, "SELECT * FROM sites") == "42501"
    finally:
        migrate.upgrade(owner)
    assert _sqlstate(reader, "SELECT * FROM sites") is None
