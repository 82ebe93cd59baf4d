"""Which hours to recompute for a meter, and from which readings, so that the
result equals a full recomputation (the property the tests check).

A new reading changes the interval before and after it, and (through the glitch
rule) the status of its neighbours. The window therefore runs from a reading that
is *certainly kept* well before the change (its status does not depend on what
came before it) to one well after it, and only hours lying wholly between the two
are rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.emissions.counters import Reading, Replacement, certainly_kept
from core.emissions.hours import HOUR, ceil_hour, floor_hour

# Readings either side of a change whose intervals or status it can alter.
REACH = 3
# "To the end of the meter's data", for windows open on the right.
END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """Rewrite hours [first_hour, end_hour) from readings in [start, stop] (None: to the end)."""

    first_hour: datetime
    end_hour: datetime
    start: datetime
    stop: datetime | None


def clusters(
    hours: list[datetime], max_gap: timedelta = timedelta(hours=6)
) -> list[tuple[datetime, datetime]]:
    """Dirty hours grouped into runs [first, last + 1h); a late reading months back
    does not drag every hour since then into one recomputation."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if runs and hour - runs[-1][1] <= max_gap:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def _no_replacement_between(replacements: list[Replacement], t0: datetime, t1: datetime) -> bool:
    return not any(t0 < r.at <= t1 for r in replacements)


def anchor_before(
    fetch: Callable[[int], list[Reading]], limit: datetime, replacements: list[Replacement]
) -> tuple[Reading | None, bool]:
    """The latest certainly-kept reading at or before `limit`; (None, True) if the
    meter has no reading that early. The flag says whether it is the meter's first."""
    n = 16
    while True:
        pre = fetch(n)
        at_start = len(pre) < n
        values = [r.value for r in pre]
        for j in range(len(pre) - 1, -1, -1):
            if pre[j].ts > limit:
                continue
            if j < 2 and not at_start:
                break
            if certainly_kept(values, j) and (
                j < 2 or _no_replacement_between(replacements, pre[j - 2].ts, pre[j].ts)
            ):
                return pre[j], at_start and j == 0
        if at_start:
            return (pre[0], True) if pre else (None, True)
        n *= 4


def counter_window(
    dirty: tuple[datetime, datetime],
    before: Callable[[datetime, int], list[Reading]],
    after: Callable[[datetime, int], list[Reading]],
    replacements: list[Replacement],
) -> Window | None:
    first_dirty, end_dirty = dirty
    pre = before(first_dirty, REACH)
    affected_start = pre[0].ts if pre else first_dirty
    anchor, is_first = anchor_before(
        lambda n: before(floor_hour(affected_start) + timedelta(microseconds=1), n),
        floor_hour(affected_start),
        replacements,
    )
    if anchor is None:
        # Nothing at or before the affected start: begin with the meter's first reading.
        first = after(first_dirty - timedelta(days=36500), 1)
        if not first:
            return None
        anchor, is_first = first[0], True
    first_hour = floor_hour(anchor.ts) if is_first else ceil_hour(anchor.ts)
    post = after(end_dirty, REACH)
    if len(post) < REACH:
        return Window(first_hour, END_OF_TIME, anchor.ts, None)
    stop = _stop_after(ceil_hour(post[-1].ts), before, after, replacements)
    if stop is None:
        return Window(first_hour, END_OF_TIME, anchor.ts, None)
    return Window(first_hour, floor_hour(stop.ts), anchor.ts, stop.ts)


def _stop_after(
    limit: datetime,
    before: Callable[[datetime, int], list[Reading]],
    after: Callable[[datetime, int], list[Reading]],
    replacements: list[Replacement],
) -> Reading | None:
    """The first certainly-kept reading at or after `limit` (None: none yet)."""
    n = 16
    while True:
        context = before(limit, 2)
        following = after(limit, n)
        readings = context + following
        values = [r.value for r in readings]
        for j in range(len(context), len(readings)):
            if (
                j >= 2
                and certainly_kept(values, j)
                and _no_replacement_between(replacements, readings[j - 2].ts, readings[j].ts)
            ):
                return readings[j]
        if len(following) < n:
            return None
        n *= 4


def delta_window(dirty: tuple[datetime, datetime], interval_s: int) -> Window:
    """A delta reading at t covers (t - interval_s, t]: hours from its start's hour."""
    first_dirty, end_dirty = dirty
    span = timedelta(seconds=interval_s)
    first_hour = floor_hour(first_dirty - span)
    return Window(first_hour, end_dirty, first_hour, end_dirty + span)
