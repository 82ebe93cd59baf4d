"""Reading the provisioned Grafana files the way Grafana does, for the tests.

Dashboards and data sources are loaded from grafana/; a panel query is run as
Grafana would run it: template variables resolved from their own queries, the
dashboard's default time range, the panel's interval (never below the data
source's minimum), macros expanded, on the read-only role's connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import URL, Connection, Row, text

from core.paths import secrets_dir
from core.settings import Settings
from tests.grafana_macros import TimeRange, Variable, expand, parse_interval
from tests.kit.paths import ROOT

GRAFANA = ROOT / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "emissions.yaml"
PG_UID = "emissions-timescaledb"
PROM_UID = "emissions-prometheus"
READER_LOGIN = "emissions_grafana"
RELATIVE = re.compile(r"^now(?:-(\d+)([smhdwMy]))?(?:/([dMy]))?$")


def reader_url(settings: Settings) -> URL:
    """The store as Grafana's login sees it (created by scripts/setup.sh)."""
    password_file = secrets_dir(settings.state_dir) / "grafana_db_password"
    return URL.create(
        "postgresql+psycopg",
        username=READER_LOGIN,
        password=password_file.read_text().strip(),
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
    )


def datasources() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(DATASOURCES.read_text())
    return {ds["uid"]: ds for ds in data["datasources"]}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield from panel.get("panels", [])
        if panel["type"] != "row":
            yield panel


def sql_targets(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel.get("datasource") or {}
            if ds.get("uid") == PG_UID:
                yield panel, target


def resolve_time(expr: str, now: datetime) -> datetime:
    """Grafana's relative times used by the dashboards (now, now-7d, now/y), in UTC."""
    match = RELATIVE.match(expr)
    if not match:
        raise ValueError(f"time {expr!r} not understood")
    amount, unit, round_to = match.groups()
    t = now
    if amount:
        t -= parse_interval(f"{amount}{unit}")
    if round_to == "d":
        t = t.replace(hour=0, minute=0, second=0, microsecond=0)
    elif round_to == "M":
        t = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif round_to == "y":
        t = t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return t


def panel_interval(panel: dict[str, Any], start: datetime, end: datetime) -> timedelta:
    """$__interval: range / ~1000 points, never below the panel's or the data source's minimum."""
    minimum = parse_interval(datasources()[PG_UID]["jsonData"]["timeInterval"])
    if panel.get("interval"):
        minimum = max(minimum, parse_interval(panel["interval"]))
    return max(minimum, timedelta(seconds=max(1, int((end - start).total_seconds() / 1000))))


@dataclass
class View:
    """A dashboard as one user sees it: variable values and a time range."""

    board: dict[str, Any]
    variables: dict[str, Variable]
    start: datetime
    end: datetime

    def render(self, panel: dict[str, Any], raw_sql: str) -> str:
        interval = panel_interval(panel, self.start, self.end)
        return expand(raw_sql, self.variables, TimeRange(self.start, self.end, interval))

    def run(self, conn: Connection, panel: dict[str, Any], raw_sql: str) -> list[Row[Any]]:
        return list(conn.execute(text(escape_colons(self.render(panel, raw_sql)))).all())


def escape_colons(sql: str) -> str:
    """SQLAlchemy's text() reads `:name` as a bind parameter; Grafana sends SQL as is."""
    return re.sub(r"(?<!:):(?![:=])", r"\\:", sql)


def variable_options(
    conn: Connection, var: dict[str, Any], resolved: dict[str, Variable], now: datetime
) -> list[str]:
    query = var["query"] if isinstance(var["query"], str) else var["query"]["rawSql"]
    sql = expand(query, resolved, TimeRange(now - timedelta(hours=6), now, timedelta(hours=1)))
    result = conn.execute(text(escape_colons(sql)))
    columns = list(result.keys())
    column = columns.index("__value") if "__value" in columns else 0
    return [str(row[column]) for row in result]


def views(conn: Connection, board: dict[str, Any], now: datetime, every_option: bool) -> list[View]:
    """The default view (each variable's saved current value, else its first option;
    All for multi-value ones); with every_option, also each option of each
    single-value variable, the variables after it re-resolved."""
    start = resolve_time(board["time"]["from"], now)
    end = resolve_time(board["time"]["to"], now)
    found: list[View] = []

    def walk(index: int, resolved: dict[str, Variable], explore: bool) -> None:
        variables = board["templating"]["list"]
        if index == len(variables):
            found.append(View(board, dict(resolved), start, end))
            return
        var = variables[index]
        options = variable_options(conn, var, resolved, now)
        assert options, f"variable {var['name']} of {board['uid']} has no options"
        if var.get("multi") or var.get("includeAll"):
            choices = [Variable(options, var.get("multi", False), var.get("includeAll", False))]
        else:
            current = (var.get("current") or {}).get("value")
            default = current if current in options else options[0]
            picks = options if explore else [default]
            choices = [Variable(v) for v in picks]
        for choice in choices:
            walk(index + 1, {**resolved, var["name"]: choice}, explore)

    walk(0, {}, every_option)
    return found


def utc_now() -> datetime:
    return datetime.now(UTC)
