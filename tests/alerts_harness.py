"""A small park with a roadmap of exactly 1 tCO2e per hour, and helpers that write
hourly totals and readings straight into the real store, for the alert tests."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from alerts.evaluate import evaluate
from core.park.loader import parse_park
from core.settings import Settings
from tests.kit.broker import Broker
from tests.kit.database import park_database
from tests.kit.mqtt import clear_retained, subscribed
from tests.mqtt import TestClient

SITE = "ALR"
T0 = datetime(2026, 3, 10, tzinfo=UTC)
DRIFT_TOPIC = f"parks/{SITE}/alerts/roadmap_drift"
BUDGET_KG_PER_H = 1000.0  # 8760 tCO2e a year in a 365-day year, no reduction yet

PARK: dict[str, Any] = {
    "default_factors": {"electricity": "GRID"},
    "factors": [
        {
            "key": "GRID",
            "unit": "kWh",
            "values": [
                {
                    "valid_from": "2020-01-01T00:00:00+00:00",
                    "kgco2e_per_unit": 0.5,
                    "source": "test",
                }
            ],
        }
    ],
    "sites": [
        {
            "id": SITE,
            "name": "Alert test site",
            "timezone": "UTC",
            "roadmap": {
                "baseline": {"year": 2025, "tco2e": 8760},
                "milestones": [{"year": 2030, "reduction_pct": 0}],
            },
            "alerts": {
                "drift": {
                    "windows": ["trailing_7d"],
                    "tolerance_pct": 10,
                    "hysteresis_pct": 5,
                    "for_s": 3600,
                },
                "forecast": {"enabled": False},
                "data_quality": {"max_resets": 2, "max_quarantine_pct": 5},
            },
            "enterprises": [
                {
                    "id": "ALR-E1",
                    "name": "Tenant",
                    "industry": "plastics",
                    "meters": [
                        {
                            "id": "ALR-M1",
                            "kind": "electricity",
                            "unit": "kWh",
                            "reading": "counter",
                            "max_gap_s": 900,
                            "commissioned_at": "2020-01-01T00:00:00+00:00",
                        },
                        {
                            "id": "ALR-M2",
                            "kind": "electricity",
                            "unit": "kWh",
                            "reading": "counter",
                            "commissioned_at": "2020-01-01T00:00:00+00:00",
                        },
                    ],
                }
            ],
        }
    ],
}


def park_with(**site_alerts: Any) -> dict[str, Any]:
    """PARK with the site's `alerts` sections replaced."""
    data = copy.deepcopy(PARK)
    data["sites"][0]["alerts"].update(site_alerts)
    return data


@contextmanager
def alert_db(
    database_factory: Callable[[], Settings], park: dict[str, Any] | None = None
) -> Iterator[tuple[Settings, Engine]]:
    with park_database(database_factory, parse_park(park or PARK), pool_size=10) as db:
        yield db


@contextmanager
def drift_viewer(broker: Broker) -> Iterator[TestClient]:
    """The viewer user on the site's drift alert topic, seeing only what is published
    from now on: the retained message an earlier test left there is cleared first."""
    clear_retained(broker, "svc-alerts", DRIFT_TOPIC)
    with subscribed(broker, "svc-viewer", DRIFT_TOPIC) as viewer:
        yield viewer


def fire_drift(engine: Engine) -> None:
    """Two hours above the roadmap (twice the budget from T0 on): the site's drift
    alert fires."""
    set_level(engine, 2.0, T0 + timedelta(days=1))
    evaluate(engine, T0)
    evaluate(engine, T0 + timedelta(hours=1))


def set_hourly(engine: Engine, start: datetime, end: datetime, kg_per_h: float) -> None:
    """The site's hourly CO2e over [start, end) (rows replaced), as the engine's rollups."""
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM site_hourly WHERE site_id = :s AND hour >= :a AND hour < :b"),
            {"s": SITE, "a": start, "b": end},
        )
        conn.execute(
            text(
                "INSERT INTO site_hourly (site_id, hour, kind, scope, unit, consumption, "
                "co2e_kg, avoided_co2e_kg, meter_hours, estimated_meter_hours) "
                "SELECT :s, h, 'electricity', 2, 'kWh', :kg * 2, :kg, 0, 1, 0 "
                "FROM generate_series(CAST(:a AS timestamptz), CAST(:b AS timestamptz) "
                "- interval '1 hour', interval '1 hour') AS h"
            ),
            {"s": SITE, "a": start, "b": end, "kg": kg_per_h},
        )


def set_level(engine: Engine, ratio: float, until: datetime) -> None:
    """Every hour of the 30 days before `until` (and a day after) at `ratio` x budget."""
    hour = until.replace(minute=0, second=0, microsecond=0)
    set_hourly(engine, hour - timedelta(days=30), hour + timedelta(days=1), ratio * 1000.0)


def rows(conn: Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(text(sql), params)]


def open_alerts(engine: Engine, rule: str | None = None) -> list[tuple[int, str, str, str]]:
    with engine.connect() as conn:
        return rows(
            conn,
            "SELECT id, rule, subject, state FROM alerts WHERE state <> 'resolved' "
            "AND (CAST(:r AS text) IS NULL OR rule = :r) ORDER BY id",
            r=rule,
        )


def events(engine: Engine, alert_id: int | None = None) -> list[str]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in rows(
                conn,
                "SELECT state FROM alert_events WHERE (CAST(:a AS bigint) IS NULL "
                "OR alert_id = :a) ORDER BY id",
                a=alert_id,
            )
        ]


def add_reading(engine: Engine, meter: str, ts: datetime, value: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO readings (meter_id, ts, value) VALUES (:m, :ts, :v)"),
            {"m": meter, "ts": ts, "v": value},
        )


def set_enterprise_hourly(
    engine: Engine, enterprise: str, start: datetime, end: datetime, kg_per_h: float
) -> None:
    """One enterprise's hourly CO2e over [start, end), as the engine's rollups."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO enterprise_hourly (enterprise_id, site_id, hour, kind, scope, unit, "
                "consumption, co2e_kg, avoided_co2e_kg, meter_hours, estimated_meter_hours) "
                "SELECT :e, :s, h, 'electricity', 2, 'kWh', :kg * 2, :kg, 0, 1, 0 "
                "FROM generate_series(CAST(:a AS timestamptz), CAST(:b AS timestamptz) "
                "- interval '1 hour', interval '1 hour') AS h "
                "ON CONFLICT (enterprise_id, hour, kind) DO UPDATE SET co2e_kg = EXCLUDED.co2e_kg"
            ),
            {"e": enterprise, "s": SITE, "a": start, "b": end, "kg": kg_per_h},
        )
