"""The test-side Grafana interpolation against expansions Grafana itself produces
(the cases of Grafana's own macros_test.go and SqlDatasource's interpolateVariable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.emissions.hours import HOUR
from tests.grafana_macros import (
    MacroError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    format_interval,
    go_rfc3339nano,
    interpolate_variables,
    parse_interval,
)

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
TO = FROM + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select $__timeEpoch(t)", 'select extract(epoch from t) as "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "GROUP BY $__timeGroup(time_column,'5m')",
            "GROUP BY time_bucket('300.000s',time_column)",
        ),
        (
            "GROUP BY $__timeGroup(time_column , '5m')",
            "GROUP BY time_bucket('300.000s',time_column)",
        ),
        (
            "GROUP BY $__timeGroup(time_column , '12d')",
            "GROUP BY time_bucket('1036800.000s',time_column)",
        ),
        (
            "GROUP BY $__timeGroup(time_column , '20ms')",
            "GROUP BY time_bucket('0.020s',time_column)",
        ),
        (
            "SELECT $__timeGroupAlias(time_column,'5m')",
            "SELECT time_bucket('300.000s',time_column) AS \"time\"",
        ),
        # Pre-5.3 compatibility: a $__timeGroup directly followed by a comma is aliased.
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            "SELECT time_bucket('300.000s',time_column) AS \"time\", value",
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT time_bucket('300.000s',time_column) as time, value",
        ),
        ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
        (
            "SELECT $__timeGroupAlias(hour, $__interval, 0)",
            "SELECT time_bucket('3600.000s',hour) AS \"time\"",
        ),
        ("SELECT $__unixEpochFrom(), $__interval_ms", "SELECT 1523556000, 3600000"),
    ],
)
def test_macros_expand_as_grafana_with_timescaledb(sql: str, expected: str) -> None:
    assert expand_macros(sql, FROM, TO, HOUR) == expected


def test_without_timescaledb_grafana_buckets_epoch_seconds() -> None:
    sql = expand_macros("SELECT $__timeGroup(time_column,'5m')", FROM, TO, HOUR, timescaledb=False)
    assert sql == "SELECT floor(extract(epoch from time_column)/300)*300"
    sql = expand_macros("SELECT $__unixEpochGroupAlias(t+a,'5m')", FROM, TO, HOUR)
    assert sql == 'SELECT floor((t+a)/300)*300 AS "time"'


def test_time_formats_match_go() -> None:
    half = datetime(1960, 2, 1, 7, 0, 0, 500_000, tzinfo=UTC)
    assert go_rfc3339nano(half) == "1960-02-01T07:00:00.5Z"
    assert format_interval(timedelta(minutes=90)) == "1h"
    assert format_interval(timedelta(days=8)) == "8d"
    assert format_interval(timedelta(seconds=30)) == "30s"
    assert parse_interval("1M") == timedelta(days=30)


def test_unknown_macros_and_bad_arguments_are_errors() -> None:
    for sql in ("SELECT $__nope(x)", "SELECT $__timeGroup(x)", "SELECT $__timeGroup(x, 5 parsecs)"):
        with pytest.raises(MacroError):
            expand_macros(sql, FROM, TO, HOUR)


def test_template_variables_are_formatted_like_the_sql_data_sources() -> None:
    variables = {
        "site": Variable("NCK"),
        "name": Variable("O'Brien"),
        "kind": Variable(["electricity", "water"], multi=True),
        "one": Variable("lpg", include_all=True),
    }
    sql = (
        "WHERE s = '$site' AND n = '${name}' AND k IN ($kind) AND o IN ([[one]]) "
        "AND r = '${kind:raw}' AND q IN (${site:sqlstring}) AND t = $__timeFilter(x) $unknown"
    )
    assert interpolate_variables(sql, variables, TimeRange(FROM, TO, HOUR)) == (
        "WHERE s = 'NCK' AND n = 'O''Brien' AND k IN ('electricity','water') AND o IN ('lpg') "
        "AND r = 'electricity,water' AND q IN ('NCK') AND t = $__timeFilter(x) $unknown"
    )


def test_browser_stage_runs_before_the_macros() -> None:
    sql = "SELECT $__timeGroupAlias(hour, $__interval) FROM t WHERE site = '$site'"
    time = TimeRange(FROM, TO, timedelta(days=1))
    assert expand(sql, {"site": Variable("NCK")}, time) == (
        "SELECT time_bucket('86400.000s',hour) AS \"time\" FROM t WHERE site = 'NCK'"
    )
