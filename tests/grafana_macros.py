"""Grafana's query interpolation for its PostgreSQL data source, re-implemented for tests.

Two stages, as in Grafana 11:

1. The browser replaces template variables (`$var`, `${var}`, `${var:fmt}`,
   `[[var]]`) and the built-ins `$__interval`, `$__interval_ms`, `$__from`,
   `$__to`. The SQL data sources format a multi-value or include-All variable
   as a list of quoted literals (`'a','b'`) and a single-value one raw, with
   single quotes doubled (public/app/features/plugins/sql/datasource/SqlDatasource.ts,
   interpolateVariable).
2. The backend replaces `$__interval`, `$__interval_ms`, `$__unixEpochFrom()`,
   `$__unixEpochTo()` (pkg/tsdb/grafana-postgresql-datasource/sqleng, Interpolate),
   then the macros `$__name(args)` (macros.go): with the TimescaleDB option on,
   `$__timeGroup` is `time_bucket('<n.nnn>s',col)`. A `$__timeGroup(...)` directly
   followed by a comma becomes `$__timeGroupAlias` (Grafana's pre-5.3 compatibility).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

# Grafana's variable regex (public/app/features/variables/utils.ts).
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$")
UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "y": 365 * 86400,
}


# The macros that only place their argument and the time range ({0} is the first argument).
TEMPLATES = {
    "__time": '{0} AS "time"',
    "__timeEpoch": 'extract(epoch from {0}) as "time"',
    "__timeFilter": "{0} BETWEEN '{start}' AND '{end}'",
    "__timeFrom": "'{start}'",
    "__timeTo": "'{end}'",
    "__unixEpochFilter": "{0} >= {lo} AND {0} <= {hi}",
}


class MacroError(ValueError):
    """What Grafana answers with an error for (unknown macro, bad arguments)."""


class TimeRange(NamedTuple):
    """The dashboard's time picker, and the interval Grafana chose for one panel."""

    start: datetime
    end: datetime
    interval: timedelta


@dataclass(frozen=True)
class Variable:
    value: str | Sequence[str]
    multi: bool = False
    include_all: bool = False


def go_rfc3339nano(t: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC instant: trailing fraction zeros trimmed."""
    utc = t.astimezone(UTC)
    base = utc.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_interval(text: str) -> timedelta:
    """gtime.ParseInterval: a number and one unit (M is 30 days, y 365)."""
    match = INTERVAL.match(text.strip())
    if not match:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=float(match.group(1)) * UNIT_SECONDS[match.group(2)])


def format_interval(interval: timedelta) -> str:
    """gtime.FormatInterval: the largest whole unit among y, d, h, m, s, ms."""
    ms = int(interval / timedelta(milliseconds=1))
    for unit, size in (("y", 365 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    for unit, size in (("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def format_variable(var: Variable, fmt: str | None) -> str:
    values = [var.value] if isinstance(var.value, str) else list(var.value)
    if fmt in {"raw", "csv"}:
        return ",".join(values)
    if fmt in {"sqlstring", "singlequote"}:
        return ",".join(_quote(v) for v in values)
    if fmt is not None:
        raise MacroError(f"format {fmt} not supported here")
    if isinstance(var.value, str) and not (var.multi or var.include_all):
        return var.value.replace("'", "''")
    return ",".join(_quote(v) for v in values)


def interpolate_variables(sql: str, variables: Mapping[str, Variable], time: TimeRange) -> str:
    """Stage 1 (browser): unknown names (macros included) are left as they are."""
    start, end, interval = time
    builtins = {
        "__interval": format_interval(interval),
        "__interval_ms": str(int(interval / timedelta(milliseconds=1))),
        "__from": str(int(start.timestamp() * 1000)),
        "__to": str(int(end.timestamp() * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return format_variable(variables[name], fmt)
        return match.group(0)

    return VARIABLE.sub(replace, sql)


def _group(name: str, args: list[str]) -> float:
    """The bucket of a $__timeGroup / $__unixEpochGroup call, in seconds."""
    if len(args) < 2:
        raise MacroError(f"macro {name} needs time column and interval and optional fill value")
    if len(args) == 3 and not re.fullmatch(r"NULL|previous|-?\d+(\.\d+)?", args[2]):
        raise MacroError(f"error parsing fill value {args[2]}")
    return parse_interval(args[1].strip("'")).total_seconds()


def _seconds(value: float) -> str:
    """Go's %v of a float64 number of seconds (300, not 300.0)."""
    return f"{value:g}" if value != int(value) else str(int(value))


def _evaluate(name: str, args: list[str], start: datetime, end: datetime, timescaledb: bool) -> str:
    if name.endswith("Alias") and name in {"__timeGroupAlias", "__unixEpochGroupAlias"}:
        return _evaluate(name.removesuffix("Alias"), args, start, end, timescaledb) + ' AS "time"'
    if name == "__timeGroup":
        seconds = _group(name, args)
        if timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{_seconds(seconds)})*{_seconds(seconds)}"
    if name == "__unixEpochGroup":
        seconds = _group(name, args)
        return f"floor(({args[0]})/{_seconds(seconds)})*{_seconds(seconds)}"
    if name not in TEMPLATES:
        raise MacroError(f"unknown macro {name!r}")
    return TEMPLATES[name].format(
        *args,
        start=go_rfc3339nano(start),
        end=go_rfc3339nano(end),
        lo=int(start.timestamp()),
        hi=int(end.timestamp()),
    )


def expand_macros(
    sql: str, start: datetime, end: datetime, interval: timedelta, *, timescaledb: bool = True
) -> str:
    """Stage 2 (backend); the project's data source has the TimescaleDB option on."""
    sql = sql.replace("$__interval_ms", str(int(interval / timedelta(milliseconds=1))))
    sql = sql.replace("$__interval", format_interval(interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))
    original = sql

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "__timeGroup":
            at = original.find(match.group(0))
            after = at + len(match.group(0))
            if at >= 0 and after < len(original) and original[after] == ",":
                name = "__timeGroupAlias"
        args = [arg.strip(" ") for arg in match.group(2).split(",")]
        return _evaluate(name, args, start, end, timescaledb)

    return MACRO.sub(replace, sql)


def expand(sql: str, variables: Mapping[str, Variable], time: TimeRange) -> str:
    """What the PostgreSQL server receives from Grafana for this panel query."""
    return expand_macros(interpolate_variables(sql, variables, time), *time)
