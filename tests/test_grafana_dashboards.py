"""Every SQL query of every provisioned dashboard, run as Grafana runs it against a
real store holding simulated park data priced by the real engine, on Grafana's
read-only login."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from core.emissions.roadmap import window_budget_tco2e
from core.park.models import Park
from core.settings import Settings
from tests.grafana_data import load_park_data
from tests.grafana_support import (
    PG_UID,
    PROM_UID,
    View,
    dashboards,
    datasources,
    panel_interval,
    panels,
    reader_url,
    sql_targets,
    utc_now,
    views,
)
from tests.kit.database import park_database

BOARDS = dashboards()
SQL_BOARDS = [name for name, board in BOARDS.items() if any(sql_targets(board))]


@pytest.fixture(scope="module")
def store(
    database_factory: Callable[[], Settings], test_park: Park
) -> Iterator[tuple[Engine, Engine, datetime]]:
    """(service engine, Grafana's read-only engine, now) over three days of data."""
    with park_database(database_factory, test_park) as (settings, owner):
        load_park_data(owner, settings.libpq_url, test_park, utc_now(), days=3)
        reader = create_engine(reader_url(settings))
        # Dashboards are looked at after the data arrived (quarantine rows are stamped on
        # arrival).
        yield owner, reader, utc_now()
        reader.dispose()


@pytest.fixture
def reader(store: tuple[Engine, Engine, datetime]) -> Iterator[Connection]:
    """Grafana's read-only connection, in a transaction of the test's own."""
    with store[1].connect() as conn, conn.begin():
        yield conn


def test_dashboards_are_well_formed() -> None:
    assert set(BOARDS) == {
        "park-overview",
        "park-roadmap",
        "park-enterprise",
        "park-meter-health",
        "park-service-health",
    }
    assert len({b["uid"] for b in BOARDS.values()}) == len(BOARDS)
    uids = set(datasources())
    assert uids == {PG_UID, PROM_UID}
    assert datasources()[PG_UID]["jsonData"]["timescaledb"] is True
    for board in BOARDS.values():
        for panel in panels(board):
            assert panel["title"] and panel["description"], panel
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == panel["datasource"]["uid"]
        for var in board["templating"]["list"]:
            assert var["datasource"]["uid"] == PG_UID


@pytest.mark.parametrize("name", SQL_BOARDS)
def test_every_query_returns_rows_in_the_default_view(
    name: str, store: tuple[Engine, Engine, datetime], reader: Connection
) -> None:
    board = BOARDS[name]
    (view,) = views(reader, board, store[2], every_option=False)
    for panel, target in sql_targets(board):
        rows = view.run(reader, panel, target["rawSql"])
        where = f"{name} / {panel['title']} / {target['refId']}"
        assert rows, f"{where}: no rows"
        assert any(v is not None for v in rows[0]), f"{where}: only NULLs {rows[0]}"
        if target["format"] == "time_series":
            _assert_time_series(view, reader, panel, target, where)


def _assert_time_series(
    view: View, conn: Connection, panel: dict[str, Any], target: dict[str, Any], where: str
) -> None:
    """Grafana needs a `time` column, sorted; buckets inside the time range (a bucket
    may start up to one interval before it)."""
    rows = view.run(conn, panel, target["rawSql"])
    times = [r.time for r in rows]
    assert times == sorted(times), f"{where}: not sorted by time"
    assert all(isinstance(t, datetime) for t in times), where
    slack = panel_interval(panel, view.start, view.end)
    assert view.start - slack <= times[0] and times[-1] <= view.end, f"{where}: out of range"


@pytest.mark.parametrize("name", SQL_BOARDS)
@pytest.mark.parametrize("days", [1, 30, 365])
def test_every_query_runs_over_short_and_long_ranges(
    name: str, days: int, store: tuple[Engine, Engine, datetime], reader: Connection
) -> None:
    """Longer ranges mean coarser $__interval buckets (8h for a year): still valid SQL."""
    board = BOARDS[name]
    (view,) = views(reader, board, store[2], every_option=False)
    view = replace(view, start=view.end - timedelta(days=days))
    for panel, target in sql_targets(board):
        view.run(reader, panel, target["rawSql"])


@pytest.mark.parametrize("name", SQL_BOARDS)
def test_every_query_succeeds_for_every_site_and_enterprise(
    name: str, store: tuple[Engine, Engine, datetime], reader: Connection
) -> None:
    """The second site has no roadmap: budgets are empty there, never an error."""
    board = BOARDS[name]
    all_views = views(reader, board, store[2], every_option=True)
    assert len(all_views) >= 2
    for view in all_views:
        for panel, target in sql_targets(board):
            view.run(reader, panel, target["rawSql"])


def _rows(conn: Connection, view: View, title: str) -> list[Any]:
    (panel,) = [p for p in panels(view.board) if p["title"] == title]
    return view.run(conn, panel, panel["targets"][0]["rawSql"])


def _value(conn: Connection, view: View, title: str, column: str) -> Any:
    return _rows(conn, view, title)[0]._mapping[column]


def test_overview_numbers_match_the_store_and_the_python_roadmap(
    store: tuple[Engine, Engine, datetime], reader: Connection, test_park: Park
) -> None:
    owner, _, now = store
    site = next(s for s in test_park.sites if s.id == "NCK")
    assert site.roadmap is not None
    tz = ZoneInfo(site.timezone)
    local = now.astimezone(tz)
    (view,) = views(reader, BOARDS["park-overview"], now, every_option=False)
    db_now = reader.execute(text("SELECT now()")).scalar_one()
    for title, t0 in (
        ("Today vs budget", local.replace(hour=0, minute=0, second=0, microsecond=0)),
        (
            "Year to date vs budget",
            local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
        ),
    ):
        budget = window_budget_tco2e(
            t0,
            db_now,
            site.roadmap.baseline.year,
            site.roadmap.baseline.tco2e,
            [(m.year, m.reduction_pct) for m in site.roadmap.milestones],
            tz=tz,
        )
        assert math.isclose(_value(reader, view, title, "budget"), budget, rel_tol=1e-9)
    top = {r.enterprise: r.tCO2e for r in _rows(reader, view, "Top emitting enterprises")}
    with owner.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT e.name, sum(h.co2e_kg) / 1000 FROM hourly_emissions h "
                "JOIN meters m ON m.id = h.meter_id JOIN enterprises e ON e.id = h.enterprise_id "
                "WHERE m.parent_id IS NULL AND h.site_id = 'NCK' AND h.hour BETWEEN :a AND :b "
                "GROUP BY e.name ORDER BY 2 DESC LIMIT 10"
            ),
            {"a": now - timedelta(hours=24), "b": now},
        ).all()
    assert list(top) == [name for name, _ in expected]
    for name, total in expected:
        assert math.isclose(top[name], total, rel_tol=1e-9)


def test_meter_health_sees_the_injected_faults(
    store: tuple[Engine, Engine, datetime], reader: Connection
) -> None:
    (view,) = views(reader, BOARDS["park-meter-health"], store[2], every_option=False)
    assert _value(reader, view, "Meters", "silent") == 1
    assert _value(reader, view, "Estimated share", "estimated meter-hours") > 0
    events = {r.meter: r for r in _rows(reader, view, "Data-quality events per meter")}
    assert events["NCK-PARK-E-01"].glitches == 1
    assert events["NCK-STL1-W-01"].resets == 1
    assert events["NCK-GAR1-E-01"].conflicts == 1
    reasons = {r.reason for r in _rows(reader, view, "Quarantine by reason")}
    assert reasons == {"not_json", "negative_value", "unit_mismatch", "unknown_meter"}
