"""Counter (cumulative register) meters: readings to consumption intervals (SPEC section 5).

Readings are sorted by time and split into register segments at explicit meter
replacements. In a segment the first reading is a baseline only; each later reading
either is a glitch (a dip whose successor is back at or above the last kept reading:
left out, recorded, never a spike) or closes an interval from the last kept reading,
whose consumption is the difference, a wrap past `rollover`, or a reset.

Why recomputing from a "certainly kept" reading is safe: a glitch r_i is followed by
r_{i+1} >= p (the last kept reading before r_i), and p is still the last kept reading
when r_{i+1} is judged, so r_{i+1} is kept. Hence two consecutive readings are never
both dropped, and the last kept reading before r_j is r_{j-1} or r_{j-2}. A reading
at or above both of those cannot be a dip, so it is kept whatever came before it, and
everything after a kept reading depends only on that reading and its successors.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise, repeat
from operator import attrgetter, is_, lt
from typing import Literal, NamedTuple

from core.emissions.hours import as_utc

QualityKind = Literal["glitch", "reset", "wrap", "long_gap", "replacement", "implausible"]


class Reading(NamedTuple):
    """One stored register or delta value. A named tuple, not a dataclass: the engine
    makes one per reading it recomputes (millions for a site-year), and a tuple is
    built three times faster than a frozen dataclass."""

    ts: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Replacement:
    """An explicit meter swap: never guessed from the data."""

    at: datetime
    old_final: float
    new_start: float


class Interval(NamedTuple):
    """Consumption `amount` spread uniformly over [t0, t1]; `estimated` for long gaps.
    A named tuple for the same reason as `Reading`: one per reading."""

    t0: datetime
    t1: datetime
    amount: float
    estimated: bool


@dataclass(frozen=True, slots=True)
class QualityEvent:
    ts: datetime
    kind: QualityKind
    detail: dict[str, float]


def certainly_kept(values: Sequence[float], index: int) -> bool:
    """Whether reading `index` of one register segment is kept whatever precedes it.

    `values` are the segment's values in time order, as `register_segments` gives
    them. True for the segment's baseline, for the second reading when it is at or
    above the baseline, and for a reading at or above both of its two predecessors
    (see the module docstring for why). Recomputing from such a reading, taken as a
    baseline, reproduces every later interval and event of a full recomputation.
    """
    if not 0 <= index < len(values):
        raise IndexError(f"index {index} outside a segment of {len(values)} readings")
    if index == 0:
        return True
    value = values[index]
    return all(value >= values[j] for j in range(max(index - 2, 0), index))


def sorted_readings(readings: Sequence[Reading]) -> list[Reading]:
    """Readings in time order with UTC timestamps; two readings at one instant are refused."""
    stamps = [r.ts for r in readings]
    zones = map(attrgetter("tzinfo"), stamps)
    if all(map(is_, zones, repeat(UTC))) and all(map(lt, stamps, islice(stamps, 1, None))):
        return list(readings)  # as the store hands them over: nothing to convert
    ordered = sorted((Reading(as_utc(r.ts), r.value) for r in readings), key=lambda r: r.ts)
    for before, after in pairwise(ordered):
        if before.ts == after.ts:
            raise ValueError(f"two readings at {after.ts.isoformat()}")
    return ordered


def sorted_replacements(replacements: Sequence[Replacement]) -> list[Replacement]:
    """Replacements in time order with UTC instants; two at one instant are refused."""
    if not replacements:
        return []  # nearly every meter, every time: skip building the sort
    ordered = sorted(
        (Replacement(as_utc(c.at), c.old_final, c.new_start) for c in replacements),
        key=lambda c: c.at,
    )
    for before, after in pairwise(ordered):
        if before.at == after.at:
            raise ValueError(f"two meter replacements at {after.at.isoformat()}")
    return ordered


def register_segments(
    readings: Sequence[Reading], replacements: Sequence[Replacement] = ()
) -> list[list[Reading]]:
    """The readings of each register, in time order, including the replacement points.

    Readings before a replacement's `at` belong to the old register, which ends with
    (at, old_final); readings at or after it belong to the new register, which starts
    with the baseline (at, new_start). There is always one more segment than there are
    replacements (a segment may hold a single point, which yields no interval).
    """
    ordered = sorted_readings(readings)
    stamps = [r.ts for r in ordered]
    segments: list[list[Reading]] = []
    head: list[Reading] = []
    lo = 0
    for change in sorted_replacements(replacements):
        hi = bisect_left(stamps, change.at)
        segments.append([*head, *ordered[lo:hi], Reading(change.at, change.old_final)])
        head, lo = [Reading(change.at, change.new_start)], hi
    segments.append([*head, *ordered[lo:]])
    return segments


def glitch_event(kept: Reading, reading: Reading, successor: Reading | None) -> QualityEvent | None:
    """The glitch event when `reading` dips below the last kept reading and its successor
    is back at or above it; None when `reading` is to be kept."""
    if successor is None or not reading.value < kept.value <= successor.value:
        return None
    detail = {"value": reading.value, "previous": kept.value, "next": successor.value}
    return QualityEvent(reading.ts, "glitch", detail)


def consumption(
    kept: Reading, reading: Reading, rollover: float | None
) -> tuple[float, QualityEvent | None]:
    """Consumption from the last kept reading to `reading`, and the wrap or reset event."""
    previous, value = kept.value, reading.value
    if value >= previous:
        return value - previous, None
    detail = {"previous": previous, "value": value}
    if rollover is not None and previous - value > rollover / 2:
        amount = value + rollover - previous
        detail |= {"rollover": rollover, "consumption": amount}
        return amount, QualityEvent(reading.ts, "wrap", detail)
    return value, QualityEvent(reading.ts, "reset", detail | {"consumption": value})


def segment_intervals(
    points: Sequence[Reading], rollover: float | None, max_gap: timedelta
) -> tuple[list[Interval], list[QualityEvent]]:
    """Intervals and events of one register segment (points in time order).

    A reading at or above the last kept one is neither a glitch nor a dip: its
    interval is the plain difference, taken without the helpers' calls (the case of
    nearly every reading)."""
    intervals: list[Interval] = []
    events: list[QualityEvent] = []
    if not points:
        return intervals, events
    kept = points[0]
    last = len(points) - 1
    for i in range(1, last + 1):
        reading = points[i]
        if reading.value >= kept.value:
            amount = reading.value - kept.value
        else:
            glitch = glitch_event(kept, reading, points[i + 1] if i < last else None)
            if glitch is not None:
                events.append(glitch)
                continue
            amount, event = consumption(kept, reading, rollover)
            if event is not None:
                events.append(event)
        gap = reading.ts - kept.ts
        estimated = gap > max_gap
        if estimated:
            detail = {"gap_s": gap.total_seconds(), "max_gap_s": max_gap.total_seconds()}
            events.append(QualityEvent(reading.ts, "long_gap", detail))
        intervals.append(Interval(kept.ts, reading.ts, amount, estimated))
        kept = reading
    return intervals, events


def counter_intervals(
    readings: Sequence[Reading],
    rollover: float | None,
    max_gap_s: int,
    replacements: Sequence[Replacement] = (),
) -> tuple[list[Interval], list[QualityEvent]]:
    """Consumption intervals and data-quality events of one counter meter.

    Readings may come in any order (they are sorted; one reading per instant). Output
    is in time order with UTC timestamps; a replacement event follows the old
    register's last interval and events at the same instant. A trailing dip counts as
    a reset: callers recompute when its successor arrives, and it may then become a
    glitch. Intervals longer than `max_gap_s` are estimated (a long_gap event at their
    end): a gap is missing data, not zero.
    """
    if rollover is not None and not rollover > 0:
        raise ValueError(f"rollover must be positive, got {rollover!r}")
    if max_gap_s < 0:
        raise ValueError(f"max_gap_s must not be negative, got {max_gap_s!r}")
    max_gap = timedelta(seconds=max_gap_s)
    changes = sorted_replacements(replacements)
    intervals: list[Interval] = []
    events: list[QualityEvent] = []
    for n, points in enumerate(register_segments(readings, changes)):
        more_intervals, more_events = segment_intervals(points, rollover, max_gap)
        intervals += more_intervals
        events += more_events
        if n < len(changes):
            change = changes[n]
            detail = {"old_final": change.old_final, "new_start": change.new_start}
            events.append(QualityEvent(change.at, "replacement", detail))
    return intervals, events
