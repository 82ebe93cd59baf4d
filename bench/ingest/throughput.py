"""The ingestor end to end: throughput of single readings and of batches, and the
warm-up that comes first."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from bench.ingest.ceilings import publish_summary
from bench.ingest.plan import Bench, Day, count_day, day_start_us, exists, truncate
from bench.publishers.canonical import single_payload, us_to_dt
from bench.publishers.jobs import SITE_TZ
from bench.publishers.process import PublisherGroup
from bench.stack.broker import PREFIX, mqtt_close, mqtt_connect
from bench.stack.services import metrics_delta
from core import topics


def wait_committed(
    bench: Bench, probes: Sequence[tuple[str, datetime]], day: Day, expected: int, timeout: float
) -> tuple[float | None, int, str]:
    """When every published reading is committed: (time, count, how).

    Probe the last reading of each publisher every 20 ms (an index lookup); a
    publisher's messages are delivered in order and the ingestor commits in
    order, so once its last reading is visible all of it should be. That is then
    checked with an exact count(*); if it falls short, count(*) is polled every
    50 ms until it matches or stops moving for 15 s."""
    assert bench.ingestor is not None
    deadline = time.monotonic() + timeout
    seen_at = None
    pending = list(probes)
    while time.monotonic() < deadline:
        pending = [p for p in pending if not exists(bench.conn, *p)]
        if not pending:
            seen_at = time.time()
            break
        bench.ingestor.check()
        time.sleep(0.02)
    count = count_day(bench.conn, day)
    if seen_at is not None and count == expected:
        return seen_at, count, "probe"
    moved = time.monotonic()
    while count != expected and time.monotonic() - moved < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
        now_count = count_day(bench.conn, day)
        if now_count != count:
            count, moved = now_count, time.monotonic()
    return (time.time() if count == expected else None), count, "count"


def run_ingest_throughput(bench: Bench, kind: Literal["single", "batch"]) -> dict[str, Any]:
    assert bench.ingestor is not None
    day = Day.single if kind == "single" else Day.batch
    messages = bench.sizes.single_messages if kind == "single" else bench.sizes.batch_messages
    jobs = bench.jobs(kind, day, messages)
    expected = sum(j.readings for j in jobs)
    before = bench.ingestor.metrics()
    with PublisherGroup(jobs) as pubs, bench.profiler.record(bench.ingestor.pid, kind):
        pubs.go()
        done_at, count, how = wait_committed(
            bench, [j.last_key() for j in jobs], day, expected, timeout=120 + expected / 2000
        )
        reports = pubs.results(60)
    after = bench.ingestor.metrics()
    first = min(r.first_publish for r in reports)
    result: dict[str, Any] = {
        "messages": sum(j.messages for j in jobs),
        "readings": expected,
        "stored": count,
        "verified": count == expected,
        "completion_detected_by": how,
        **publish_summary(reports),
        "ingestor": metrics_delta(before, after),
    }
    if done_at is not None:
        elapsed = done_at - first
        result |= {
            "seconds": elapsed,
            "readings_per_s": expected / elapsed,
            "messages_per_s": result["messages"] / elapsed,
        }
    truncate(bench.conn)
    return result


def warm_up(bench: Bench, timeout: float = 60.0) -> float:
    """Until the ingestor has subscribed, published messages are dropped (no session
    yet): publish one reading every 0.3 s until it is stored. Returns seconds taken."""
    assert bench.ingestor is not None
    gw = bench.single_gateways()[-1]
    meter, unit = gw.meters[0]
    us = day_start_us(Day.warmup)
    ts = us_to_dt(us).astimezone(SITE_TZ).isoformat(timespec="milliseconds")
    payload = single_payload(ts, 1.0, unit)
    client, _ = mqtt_connect(bench.broker.port, gw.id, bench.broker.password(gw.id))
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            bench.ingestor.check()
            client.publish(topics.reading(PREFIX, gw.site, meter), payload, qos=1)
            time.sleep(0.3)
            if exists(bench.conn, meter, us_to_dt(us)):
                return time.monotonic() - t0
    finally:
        mqtt_close(client)
    raise TimeoutError(
        f"warm-up reading not stored after {timeout} s:\n{bench.ingestor.log_tail()}"
    )
