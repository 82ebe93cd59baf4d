"""Publish-to-commit latency at a fixed rate, and the ingestor draining a backlog:
both timed by an observer that polls the newest committed reading."""

from __future__ import annotations

import bisect
import math
import threading
import time
from datetime import datetime
from typing import Any, Literal

from bench.ingest.plan import Bench, Day, count_day, day_range, truncate
from bench.publishers.jobs import STEP_US
from bench.publishers.process import PublisherGroup
from bench.report import pct
from bench.stack.database import db_connect
from bench.stack.services import metrics_delta
from core.settings import Settings


class VisibilityObserver(threading.Thread):
    """Every `interval` s: the newest committed ts among the run's meters (an index
    lookup per meter), with the wall-clock time the answer came back."""

    SQL = """
        SELECT max(v.ts) FROM unnest(%s::text[]) AS m(id)
        CROSS JOIN LATERAL (
            SELECT r.ts FROM readings r
            WHERE r.meter_id = m.id AND r.ts >= %s AND r.ts < %s
            ORDER BY r.ts DESC LIMIT 1
        ) v
    """

    def __init__(
        self, settings: Settings, meters: list[str], day: Day, target: datetime, interval: float
    ) -> None:
        super().__init__(name="visibility-observer", daemon=True)
        self.settings = settings
        self.meters = meters
        self.range = day_range(day)
        self.target = target.timestamp()
        self.interval = interval
        self.times: list[float] = []
        self.newest: list[float] = []
        self.query_s: list[float] = []
        self.reached = threading.Event()
        self.error = ""
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            with db_connect(self.settings) as conn:
                params = (self.meters, *self.range)
                while not self._stop_event.is_set():
                    t0 = time.time()
                    row = conn.execute(self.SQL, params, prepare=True).fetchone()
                    t1 = time.time()
                    newest = row[0].timestamp() if row and row[0] is not None else -math.inf
                    self.times.append(t1)
                    self.newest.append(newest)
                    self.query_s.append(t1 - t0)
                    if newest >= self.target - 1e-7:
                        self.reached.set()
                    self._stop_event.wait(max(0.0, self.interval - (time.time() - t0)))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.reached.set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def run_latency(bench: Bench, kind: Literal["single", "batch"]) -> dict[str, Any]:
    """Publish-to-commit latency at a fixed offered rate (see bench/README.md)."""
    assert bench.ingestor is not None
    day = Day.latency_single if kind == "single" else Day.latency_batch
    per_message = 1 if kind == "single" else bench.sizes.batch_size
    msg_rate = bench.sizes.latency_readings_per_s / per_message
    messages = int(msg_rate * bench.sizes.latency_seconds)
    [job] = bench.jobs(kind, day, messages, publishers=1, rate=msg_rate, stamp_values=True)
    meters = [m for m, _ in job.meters]
    interval = 0.01
    observer = VisibilityObserver(bench.settings, meters, day, job.last_key()[1], interval)
    before = bench.ingestor.metrics()
    with PublisherGroup([job]) as pubs:
        observer.start()
        pubs.go()
        [report] = pubs.results(bench.sizes.latency_seconds + 120)
        reached = observer.reached.wait(60)
        observer.stop()
    after = bench.ingestor.metrics()
    if observer.error:
        raise RuntimeError(f"observer: {observer.error}")
    lo, hi = day_range(day)
    rows = bench.conn.execute(
        "SELECT ts, value, received_at FROM readings "
        "WHERE meter_id = ANY(%s) AND ts >= %s AND ts < %s ORDER BY ts",
        (meters, lo, hi),
    ).fetchall()
    running: list[float] = []
    for newest in observer.newest:
        running.append(max(newest, running[-1]) if running else newest)
    upper, lower = [], []
    inversions = 0
    unseen = 0
    prev_received = -math.inf
    for ts, published, received_at in rows:
        i = bisect.bisect_left(running, ts.timestamp() - 1e-7)
        if i < len(running):
            upper.append(observer.times[i] - published)
        else:
            unseen += 1
        received = received_at.timestamp()
        lower.append(received - published)
        inversions += received < prev_received
        prev_received = received
    upper.sort()
    lower.sort()
    query_ms = sorted(1000 * q for q in observer.query_s)
    return {
        "kind": kind,
        "offered_readings_per_s": bench.sizes.latency_readings_per_s,
        "offered_messages_per_s": msg_rate,
        "readings_per_message": per_message,
        "seconds": bench.sizes.latency_seconds,
        "published_readings_per_s": report.readings
        / max(report.last_publish - report.first_publish, 1e-9),
        "max_publisher_lag_ms": 1000 * report.max_lag_s,
        "readings": job.readings,
        "stored": len(rows),
        "verified": len(rows) == job.readings and reached,
        "p50_ms": 1000 * pct(upper, 0.50),
        "p90_ms": 1000 * pct(upper, 0.90),
        "p99_ms": 1000 * pct(upper, 0.99),
        "max_ms": 1000 * pct(upper, 1.0),
        "txn_start_p50_ms": 1000 * pct(lower, 0.50),
        "txn_start_p99_ms": 1000 * pct(lower, 0.99),
        "not_seen_by_observer": unseen,
        "commits_in_publish_order": inversions == 0,
        "poll_interval_ms": 1000 * interval,
        "poll_query_ms_p50": pct(query_ms, 0.5),
        "poll_query_ms_p99": pct(query_ms, 0.99),
        "ingestor": metrics_delta(before, after),
    }


def run_ingest_drain(bench: Bench) -> dict[str, Any]:
    """The ingestor catching up on single-reading messages queued at the broker for its
    persistent session while it was stopped: its own ceiling, with no publisher
    competing for the CPU. The rate runs from the first commit seen to the last."""
    ingestor = bench.ingestor
    assert ingestor is not None
    [job] = bench.jobs("single", Day.drain, bench.sizes.drain_messages, publishers=1)
    meters = [m for m, _ in job.meters]
    ingestor.stop()
    try:
        with PublisherGroup([job]) as pubs:
            pubs.go()
            pubs.results(max(120.0, job.messages / 2000))
    except BaseException:
        ingestor.start()  # the runs after this one need it
        raise
    observer = VisibilityObserver(bench.settings, meters, Day.drain, job.last_key()[1], 0.02)
    observer.start()
    started = time.time()
    ingestor.start()
    deadline = time.monotonic() + 120 + job.readings / 2000
    try:
        with bench.profiler.record(ingestor.pid, "drain", settle=0.0):
            while not observer.reached.wait(0.5) and time.monotonic() < deadline:
                ingestor.check()
    finally:
        observer.stop()
    ingestor.wait_healthy()
    if observer.error:
        raise RuntimeError(f"observer: {observer.error}")
    count = count_day(bench.conn, Day.drain)
    truncate(bench.conn)
    result: dict[str, Any] = {
        "messages": job.messages,
        "readings": job.readings,
        "stored": count,
        "verified": count == job.readings and observer.reached.is_set(),
        "ingestor": metrics_delta({}, ingestor.metrics()),
    }
    seen = [(t, n) for t, n in zip(observer.times, observer.newest, strict=True) if n > -math.inf]
    target = job.last_key()[1].timestamp()
    done = [t for t, n in seen if n >= target - 1e-7]
    if seen and done:
        t_first, newest = seen[0]
        committed_first = round((newest * 1e6 - job.base_us) / STEP_US) + 1  # in order
        elapsed = done[0] - t_first
        result |= {
            "seconds": elapsed,
            "messages_per_s": (job.messages - committed_first) / elapsed,
            "readings_per_s": (job.readings - committed_first) / elapsed,
            "start_to_first_commit_s": t_first - started,
            "messages_per_s_from_start": job.messages / (done[0] - started),
        }
    return result
