"""Step 1 of bench.engine: recompute throughput. A month (--quick: a week) of
history for every meter, COPYed, every meter-hour marked dirty, and
`refresh_until_clean` run in this process; checked against the construction."""

from __future__ import annotations

import math
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench import ROOT
from bench.engine.plan import HISTORY_START, MeterRow, Sizes, daily_shape, typical_rate_per_minute
from bench.engine.scale import drain_variant, remark_all
from bench.engine.variants import Variant
from bench.stack.database import Conn, scalar
from bench.stack.profiler import Profiler
from core import dirty_marks
from core.db import make_engine
from core.settings import Settings
from engine import metrics as engine_metrics
from engine.service import refresh_until_clean


@dataclass
class Expected:
    """What a correct recomputation of the generated history must give."""

    readings: int = 0
    hours: int = 0
    totals: dict[str, float] = field(default_factory=dict)  # meter -> consumption
    wraps: dict[str, int] = field(default_factory=dict)  # meter -> wrap events


def history(
    meter: MeterRow, days: int, rng: random.Random
) -> tuple[list[tuple[datetime, float]], float, int]:
    """(readings, total consumption, wraps) of one meter over `days` from HISTORY_START.

    Counter meters: one reading a minute from 00:00 of the first day to 23:59 of the
    last, increasing by a day-shaped, noisy amount; meters with a rollover start a
    third of the period's consumption below it, so they wrap in its first third (and
    again for every further rollover's worth). Delta meters: one positive reading
    every interval_s, the first at start + interval_s, the last at the end of the
    last day. Either way every hour of the `days` gets exactly one hourly row."""
    rate = typical_rate_per_minute(meter.kind, rng)
    readings: list[tuple[datetime, float]] = []
    if meter.reading == "delta":
        assert meter.interval_s is not None
        step = meter.interval_s
        total = 0.0
        for k in range(1, days * 86_400 // step + 1):
            value = rate * step / 60 * daily_shape(meter.kind, (k * step / 60) % 1440)
            value = max(value * rng.uniform(0.8, 1.2), 1e-3)
            readings.append((HISTORY_START + timedelta(seconds=k * step), value))
            total += value
        return readings, total, 0
    n = days * 1440
    increments = [
        rate * daily_shape(meter.kind, i % 1440) * rng.uniform(0.8, 1.2) for i in range(1, n)
    ]
    total = math.fsum(increments)
    if meter.rollover is not None:
        start = meter.rollover - total / 3
    else:
        start = rng.uniform(1_000.0, 500_000.0)
    value, wraps, previous = start, 0, math.inf
    rollover = meter.rollover
    for i in range(n):
        if i:
            value += increments[i - 1]
        stored = value % rollover if rollover is not None else value
        wraps += stored < previous and i > 0
        previous = stored
        readings.append((HISTORY_START + timedelta(minutes=i), stored))
    return readings, total, wraps


def load_history(conn: Conn, meters: Sequence[MeterRow], days: int) -> tuple[Expected, float]:
    """COPY the generated history of every meter (one transaction per meter)."""
    rng = random.Random(20_251_123)
    expected = Expected(hours=len(meters) * days * 24)
    seconds = 0.0
    for meter in meters:
        readings, total, wraps = history(meter, days, rng)
        t0 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY readings (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["text", "timestamptz", "float8"])
            for ts, value in readings:
                copy.write_row((meter.id, ts, value))
        seconds += time.perf_counter() - t0
        expected.readings += len(readings)
        expected.totals[meter.id] = total
        if wraps:
            expected.wraps[meter.id] = wraps
    return expected, seconds


def histogram_state(histogram: Any) -> dict[str, float]:
    """Count, sum and cumulative buckets of an in-process prometheus histogram."""
    out: dict[str, float] = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                out[f"le={sample.labels['le']}"] = sample.value
            elif sample.name.endswith("_count"):
                out["count"] = sample.value
            elif sample.name.endswith("_sum"):
                out["sum"] = sample.value
    return out


def histogram_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Mean and bucket-bound percentiles ("at most this bucket's upper bound")."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    total = after.get("sum", 0.0) - before.get("sum", 0.0)
    buckets = sorted(
        (float(k[3:]), after[k] - before.get(k, 0.0)) for k in after if k.startswith("le=")
    )
    out: dict[str, Any] = {"count": int(count), "sum_s": total}
    if count:
        out["mean_ms"] = 1000 * total / count
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            bound = next((le for le, c in buckets if c >= q * count), math.inf)
            out[f"{name}_at_most_s"] = bound
    return out


def mark_all_dirty(conn: Conn) -> int:
    """Every meter-hour with readings dirty, as a rebuild marks them (the queue's
    one writer, core/dirty_marks.py, owns the statement)."""
    return conn.execute(dirty_marks.MARK_ALL_READINGS_PSYCOPG).rowcount


def run_recompute(
    settings: Settings,
    conn: Conn,
    meters: Sequence[MeterRow],
    sizes: Sizes,
    profiler: Profiler,
    baseline: Variant | None = None,
    cap_s: float = 300.0,
    engines: int = 1,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    expected, copy_s = load_history(conn, meters, sizes.days)
    generate_s = time.perf_counter() - t0 - copy_s
    conn.execute("ANALYZE readings")  # what autovacuum would do after such a load
    t1 = time.perf_counter()
    marks = mark_all_dirty(conn)
    mark_s = time.perf_counter() - t1
    engine = make_engine(settings)
    try:
        with engine.connect() as c:  # open the pool's first connection outside the timing
            c.exec_driver_sql("SELECT 1")
        before = histogram_state(engine_metrics.REFRESH_SECONDS)
        with profiler.record(os.getpid(), "recompute"):
            t2, cpu = time.perf_counter(), time.process_time()
            written = refresh_until_clean(engine)
            elapsed, cpu = time.perf_counter() - t2, time.process_time() - cpu
        refresh = histogram_summary(before, histogram_state(engine_metrics.REFRESH_SECONDS))
    finally:
        engine.dispose()
    result = {
        "meters": len(meters),
        "days": sizes.days,
        "readings": expected.readings,
        "generate_s": generate_s,
        "copy_s": copy_s,
        "copy_rows_per_s": expected.readings / copy_s,
        "mark_dirty_s": mark_s,
        "dirty_marks": marks,
        "seconds": elapsed,
        "hour_rows_written": written,
        "meter_hours_per_s": written / elapsed,
        "dirty_marks_per_s": marks / elapsed,
        "readings_per_s": expected.readings / elapsed,
        # The engine's own CPU time (the store's is not in it): steadier than the
        # rate on a busy machine.
        "engine_cpu_s": cpu,
        "readings_per_engine_cpu_s": expected.readings / cpu,
        "per_meter_refresh": refresh,
        **verify_recompute(conn, expected, len(meters)),
    }
    if engines > 1:
        # The same marks drained by one process with `engines` worker threads, as
        # `engine run` and `engine rebuild` work by default.
        result["workers"] = drain_in_threads(settings, conn, engines, expected, len(meters))
        # The same marks drained by the current engine in `engines` processes, as a
        # rebuild runs with more engines beside it; checked like the first run.
        k = drain_variant(Variant("current", ROOT), settings, conn, cap_s, engines)
        if k["seconds"]:
            k["readings_per_s"] = expected.readings / k["seconds"]
            k |= verify_recompute(conn, expected, len(meters))
        result["engines"] = k
    if baseline is not None:
        # The same marks drained by the baseline engine, in a process of its own.
        b = drain_variant(baseline, settings, conn, cap_s)
        if b["seconds"]:
            b["readings_per_s"] = expected.readings / b["seconds"]
            result["speedup_vs_baseline"] = b["seconds"] / elapsed
        result["baseline"] = b
    return result


def drain_in_threads(
    settings: Settings, conn: Conn, workers: int, expected: Expected, meters: int
) -> dict[str, Any]:
    """The marks made again and drained in this process by `workers` threads."""
    marks = remark_all(conn)
    engine = make_engine(settings, pool_size=workers + 1)
    try:
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
        started, cpu = time.perf_counter(), time.process_time()
        written = refresh_until_clean(engine, workers=workers)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        engine.dispose()
    return {
        "workers": workers,
        "dirty_marks": marks,
        "seconds": elapsed,
        "hour_rows_written": written,
        "cpu_s": cpu,
        "readings_per_s": expected.readings / elapsed,
        **verify_recompute(conn, expected, meters),
    }


def verify_recompute(conn: Conn, expected: Expected, meters: int) -> dict[str, Any]:
    """Row count (one row per meter-hour; tolerance one edge hour per meter), per-meter
    consumption totals (relative 1e-9) and wrap events against the construction."""
    rows = int(scalar(conn, "SELECT count(*) FROM hourly_emissions"))
    totals: dict[str, float] = {
        str(m): float(total)
        for m, total in conn.execute(
            "SELECT meter_id, sum(consumption) FROM hourly_emissions GROUP BY meter_id"
        ).fetchall()
    }
    events = Counter(
        {
            (m, k): int(n)
            for m, k, n in conn.execute(
                "SELECT meter_id, kind, count(*) FROM data_quality_events GROUP BY 1, 2"
            ).fetchall()
        }
    )
    wrong_totals = sorted(
        m
        for m, total in expected.totals.items()
        if not math.isclose(totals.get(m, math.nan), total, rel_tol=1e-9)
    )
    expected_events = Counter({(m, "wrap"): n for m, n in expected.wraps.items()})
    left = int(scalar(conn, "SELECT count(*) FROM dirty_meter_hours"))
    tolerance = meters
    return {
        "expected_hour_rows": expected.hours,
        "hour_rows": rows,
        "hour_rows_tolerance": tolerance,
        "hour_rows_exact": rows == expected.hours,
        "meters_with_wrong_total": wrong_totals,
        "wrap_events": sum(expected.wraps.values()),
        "events_as_expected": events == expected_events,
        "unexpected_events": {f"{m}/{k}": n for (m, k), n in (events - expected_events).items()},
        "dirty_left": left,
        "verified": abs(rows - expected.hours) <= tolerance
        and not wrong_totals
        and events == expected_events
        and left == 0,
    }
