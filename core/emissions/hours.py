"""UTC hours and the uniform spreading of an amount over them (SPEC section 5).

Consumption between two readings is spread uniformly over the time between them and
attributed to the UTC hours it overlaps. Overlaps are measured in whole microseconds
(the resolution of `datetime`) and each part is one correctly rounded division, so the
parts of an interval sum to its amount up to float rounding and a re-split of the same
interval always gives the same numbers.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

HOUR = timedelta(hours=1)
_MICROSECOND = timedelta(microseconds=1)


def as_utc(t: datetime) -> datetime:
    """`t` as a UTC datetime; naive datetimes are refused because their instant is unknown.

    The store hands the engine UTC datetimes (its sessions run in UTC), and this is
    called for every reading: those return at once."""
    if t.tzinfo is UTC:
        return t
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t.isoformat()} has no time zone; readings need an offset")
    return t.astimezone(UTC)


def floor_hour(t: datetime) -> datetime:
    """Start of the UTC hour containing `t`: the key every hourly figure is stored under."""
    if t.tzinfo is not UTC:
        t = as_utc(t)
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    """Smallest UTC hour start at or after `t` (equals `t` when it is an hour start)."""
    start = floor_hour(t)
    return start if start == as_utc(t) else start + HOUR


def microseconds(span: timedelta) -> int:
    """Exact length of `span` in microseconds, so overlaps are compared as integers."""
    return span // _MICROSECOND


def hour_starts(t0: datetime, t1: datetime) -> list[datetime]:
    """UTC hour starts whose hour overlaps [t0, t1] by a positive duration.

    An empty interval (t0 == t1) touches exactly one hour: the one containing it.
    """
    first, stop = floor_hour(t0), as_utc(t1)
    if first >= stop:
        return [first]
    count = (ceil_hour(stop) - first) // HOUR
    return [first + i * HOUR for i in range(count)]


def overlap(t0: datetime, t1: datetime, hour: datetime) -> timedelta:
    """Duration of [t0, t1] that falls inside the hour starting at `hour`."""
    return max(min(t1, hour + HOUR) - max(t0, hour), timedelta(0))


def spread(t0: datetime, t1: datetime, amount: float) -> dict[datetime, float]:
    """`amount` spread uniformly over [t0, t1], keyed by UTC hour start.

    Each hour receives amount x overlap / (t1 - t0), computed exactly and rounded once.
    Only hours with a positive overlap appear: an interval ending exactly on an hour
    boundary gives nothing to the hour starting there. A zero-length interval
    (t0 == t1, e.g. a reading at the very instant of a meter replacement) has no
    duration to spread over, so the whole amount goes to floor_hour(t1).
    """
    start, end = as_utc(t0), as_utc(t1)
    if end < start:
        raise ValueError(f"interval ends before it starts: {t0.isoformat()} > {t1.isoformat()}")
    if not math.isfinite(amount):
        raise ValueError(f"amount {amount!r} is not finite")
    hours = hour_starts(start, end)
    if len(hours) == 1:
        return {hours[0]: amount}
    total = microseconds(end - start)
    exact = Fraction(amount)
    return {h: float(exact * microseconds(overlap(start, end, h)) / total) for h in hours}
