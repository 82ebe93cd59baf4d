"""Query parameters shared by several routes, and their checks (all answer 422).

`start` / `end` are RFC 3339 timestamps with an offset (any offset; a naive one is
refused because its instant is unknown); the range is half-open [start, end).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query
from pydantic import AwareDatetime

from api.deps import invalid

MIN_YEAR, MAX_YEAR = 1971, 2199

Start = Annotated[
    AwareDatetime,
    Query(description="RFC 3339 with an offset, e.g. 2026-01-01T00:00:00+07:00 (inclusive)."),
]
End = Annotated[AwareDatetime, Query(description="RFC 3339 with an offset (exclusive).")]
SITE_ID = r"^[A-Za-z0-9_-]{1,64}$"
OBJECT_ID = r"^[A-Za-z0-9_.-]{1,64}$"
SiteQ = Annotated[str, Query(pattern=SITE_ID, description="Site id, e.g. NCK.")]
EnterpriseQ = Annotated[str | None, Query(pattern=OBJECT_ID, description="Enterprise id.")]
MeterQ = Annotated[str | None, Query(pattern=OBJECT_ID, description="Meter id.")]
Year = Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)]


def utc_range(start: datetime, end: datetime, max_days: int) -> tuple[datetime, datetime]:
    """[start, end) in UTC, checked: ordered, within sane years, at most `max_days`."""
    for name, value in (("start", start), ("end", end)):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            invalid(name, f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    a, b = start.astimezone(UTC), end.astimezone(UTC)
    if b <= a:
        invalid("end", "end must be after start")
    if b - a > timedelta(days=max_days):
        invalid("end", f"the range may span at most {max_days} days; split the request")
    return a, b


def local_range(start: date, end: date, tz: str, max_days: int) -> tuple[datetime, datetime]:
    """Local dates [start, end) at the site as UTC instants."""
    for name, value in (("start", start), ("end", end)):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            invalid(name, f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    if end <= start:
        invalid("end", "end must be after start")
    if (end - start).days > max_days:
        invalid("end", f"the range may span at most {max_days} days; split the request")
    zone = ZoneInfo(tz)
    return (
        datetime.combine(start, time(), zone).astimezone(UTC),
        datetime.combine(end, time(), zone).astimezone(UTC),
    )
