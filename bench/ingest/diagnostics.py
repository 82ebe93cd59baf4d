"""bench.ingest's diagnostics, in this process and without MQTT: the parser alone,
the BatchWriter alone, the Pipeline alone, and ceiling B (binary COPY)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine

from bench.ingest.plan import Bench, Day, count_day, day_range, day_start_us, truncate
from bench.publishers.canonical import us_to_dt
from bench.publishers.jobs import STEP_US
from bench.stack.broker import PREFIX
from bench.stack.database import db_connect, scalar
from core.settings import Settings
from ingest.meters import MeterRegistry
from ingest.parse import Limits, parse_message
from ingest.pipeline import BatchPolicy, Pipeline
from ingest.writer import BatchWriter, Message


def run_parse(bench: Bench) -> dict[str, Any]:
    """Diagnostic: the pure parser, in this process."""
    now = datetime.now(UTC)
    limits = Limits()
    out: dict[str, Any] = {}
    n = bench.sizes.parse_messages
    runs: tuple[tuple[Literal["single", "batch"], int], ...] = (
        ("single", n),
        ("batch", max(1, n // bench.sizes.batch_size)),
    )
    for kind, messages in runs:
        [job] = bench.jobs(kind, Day.pipeline, messages, publishers=1)
        payloads = [job.message(k) for k in range(job.messages)]
        t0 = time.perf_counter()
        rejected = 0
        for topic, payload in payloads:
            rejected += len(
                parse_message(topic, payload, PREFIX, bench.meters, now, limits).rejections
            )
        elapsed = time.perf_counter() - t0
        out[kind] = {
            "messages": job.messages,
            "readings": job.readings,
            "rejected": rejected,
            "messages_per_s": job.messages / elapsed,
            "readings_per_s": job.readings / elapsed,
        }
    return out


def run_writer(bench: Bench) -> dict[str, Any]:
    """Diagnostic: BatchWriter alone (staging COPY, INSERT .. ON CONFLICT, dirty hours),
    pre-parsed 50-reading messages, 5,000 readings per transaction."""
    size = bench.sizes.batch_size
    [job] = bench.jobs("batch", Day.writer, bench.sizes.writer_readings // size, publishers=1)
    now = datetime.now(UTC)
    messages = []
    for k in range(job.messages):
        topic, payload = job.message(k)
        parsed = parse_message(topic, payload, PREFIX, bench.meters, now, Limits())
        messages.append(Message(topic, payload, parsed))
    per_write = max(1, 5000 // size)
    writer = BatchWriter(bench.settings.libpq_url)
    stored = 0
    t0 = time.perf_counter()
    for i in range(0, len(messages), per_write):
        stored += writer.write(messages[i : i + per_write]).stored
    elapsed = time.perf_counter() - t0
    writer.close()
    count = count_day(bench.conn, Day.writer)
    truncate(bench.conn)
    return {
        "readings": job.readings,
        "stored": count,
        "verified": count == job.readings == stored,
        "readings_per_transaction": per_write * size,
        "seconds": elapsed,
        "readings_per_s": job.readings / elapsed,
    }


def run_pipeline(bench: Bench, engine: Engine) -> dict[str, Any]:
    """Diagnostic: the ingestor's Pipeline in this process without MQTT: parse and
    enqueue on this thread, the writer thread commits, then 'acks' (counted)."""
    [job] = bench.jobs("single", Day.pipeline, bench.sizes.single_messages // 3, publishers=1)
    payloads = [job.message(k) for k in range(job.messages)]
    registry = MeterRegistry(engine, [])
    registry.refresh()
    s = Settings()
    acked = [0]
    done = threading.Event()
    done_at = [0.0]

    def ack(tokens: list[object]) -> None:
        acked[0] += len(tokens)
        if acked[0] >= job.messages:
            done_at[0] = time.time()
            done.set()

    pipeline = Pipeline(
        BatchWriter(bench.settings.libpq_url),
        registry,
        PREFIX,
        Limits(s.ingest_max_payload_bytes, timedelta(seconds=s.ingest_max_future_skew_s)),
        BatchPolicy(
            s.ingest_batch_readings, s.ingest_max_inflight, s.ingest_batch_deadline_ms / 1000
        ),
        ack=ack,
    )
    pipeline.start()
    try:
        t0 = time.time()
        for k, (topic, payload) in enumerate(payloads):
            pipeline.submit(topic, payload, k)
        if not done.wait(120):
            raise TimeoutError(f"pipeline acked {acked[0]} of {job.messages}")
    finally:
        pipeline.stop()
    elapsed = done_at[0] - t0
    count = count_day(bench.conn, Day.pipeline)
    truncate(bench.conn)
    return {
        "messages": job.messages,
        "stored": count,
        "verified": count == job.messages,
        "seconds": elapsed,
        "messages_per_s": job.messages / elapsed,
    }


def run_copy(bench: Bench) -> dict[str, Any]:
    """Ceiling B: binary COPY straight into readings, one commit per batch."""
    n, batch = bench.sizes.copy_rows, bench.sizes.copy_batch
    meters = sorted(bench.meters)
    base = day_start_us(Day.copy)
    rows = [(meters[i % len(meters)], us_to_dt(base + i * STEP_US), float(i)) for i in range(n)]
    with db_connect(bench.settings, autocommit=False) as conn:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            with (
                conn.cursor() as cur,
                cur.copy("COPY readings (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text", "timestamptz", "float8"])
                for row in rows[start : start + batch]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - t0
    count = count_day(bench.conn, Day.copy)
    # What a count(*) poll costs at this size (why the ingest runs probe instead).
    lo, hi = day_range(Day.copy)
    timings = []
    for _ in range(3):
        c0 = time.perf_counter()
        scalar(bench.conn, "SELECT count(*) FROM readings WHERE ts >= %s AND ts < %s", (lo, hi))
        timings.append(time.perf_counter() - c0)
    truncate(bench.conn)
    return {
        "rows": n,
        "rows_per_commit": batch,
        "stored": count,
        "verified": count == n,
        "seconds": elapsed,
        "rows_per_s": n / elapsed,
        "count_star_ms": 1000 * sorted(timings)[1],
    }
