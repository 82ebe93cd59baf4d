"""Step 2 of bench.engine: freshness of the hourly table under a steady live load
(`emissions ingest` and `emissions engine run` as subprocesses, the load from a
publisher process, an observer here), and the check that the live hours equal a
full rebuild."""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import shlex
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.engine.observers import (
    BacklogMonitor,
    ProbeObserver,
    backlog_figures,
    engine_histogram,
    freshness_figures,
)
from bench.engine.plan import MeterRow, Sizes, typical_rate_per_minute
from bench.engine.recompute import histogram_summary, mark_all_dirty
from bench.publishers.canonical import EPOCH, Gateway, now_us, single_payload, us_to_iso
from bench.publishers.load import LoadGateway, LoadJob, LoadMeter, LoadState
from bench.publishers.process import PublisherGroup
from bench.stack.broker import PREFIX, Broker, mqtt_close, mqtt_connect
from bench.stack.database import Conn, scalar
from bench.stack.profiler import Profiler
from bench.stack.services import (
    ENGINE_USER,
    INGEST_USER,
    Service,
    metrics_delta,
    start_service,
)
from core import topics
from core.db import make_engine
from core.settings import Settings
from engine.service import refresh_until_clean


def load_plan(
    meters: Sequence[MeterRow], gateways: Sequence[Gateway], broker: Broker, sizes: Sizes
) -> LoadJob:
    """The load over every gateway and every meter but the probe meter: a counter
    meter without rollover on the gateway with the fewest meters, published by that
    gateway's connection in the load process."""
    rng = random.Random(11)
    by_id = {m.id: m for m in meters}
    candidates = [
        g
        for g in gateways
        if any(by_id[m].reading == "counter" and by_id[m].rollover is None for m, _ in g.meters)
    ]
    probe_gw = min(candidates, key=lambda g: (len(g.meters), g.id))
    probe = next(
        by_id[m]
        for m, _ in probe_gw.meters
        if by_id[m].reading == "counter" and by_id[m].rollover is None
    )
    load_gws = []
    for gw in gateways:
        load_meters = []
        for meter_id, unit in gw.meters:
            m = by_id[meter_id]
            if m.id == probe.id:
                continue
            start = (m.rollover or 1e6) * rng.uniform(0.1, 0.4) if m.reading == "counter" else 0.0
            rate = typical_rate_per_minute(m.kind, rng) / 60
            load_meters.append(
                LoadMeter(m.id, unit, m.reading == "delta", m.rollover, rate, start, 0)
            )
        load_gws.append(LoadGateway(gw.id, broker.password(gw.id), gw.site, tuple(load_meters)))
    return LoadJob(
        port=broker.port,
        gateways=tuple(load_gws),
        messages_per_s=sizes.readings_per_s / sizes.batch_size,
        per_message=sizes.batch_size,
        seconds=sizes.load_seconds,
        probe_gateway=probe_gw.id,
        probe_site=probe_gw.site,
        probe_meter=probe.id,
        probe_unit=probe.unit,
        probe_start=1000.0,
        probe_interval_s=sizes.probe_interval_s,
    )


def fill_hour(conn: Conn, job: LoadJob, minutes: float) -> tuple[LoadJob, int]:
    """--fill-minutes: readings at the load's density (one per meter every
    meters / rate seconds) for the first `minutes` of a past hour H, COPYed and marked
    dirty; the engine catches up on them during the warm-up, and the load then
    continues at H + `minutes` (its timestamps are the wall clock minus a fixed
    shift), so the meters' current hour holds as many readings as at that minute of
    a live hour. The probe meter is filled with a constant value (consumption 0)."""
    load = [m for g in job.gateways for m in g.meters]
    step_us = int(1e6 * (len(load) + 1) / (job.messages_per_s * job.per_message))
    hour_us = (now_us() // 3_600_000_000 - 1) * 3_600_000_000  # the previous hour, H
    end_us = hour_us + int(minutes * 60e6)
    state = LoadState(job)
    rows = 0
    last_us = hour_us
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy("COPY readings (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["text", "timestamptz", "float8"])
        for us in range(hour_us, end_us, step_us):
            ts = EPOCH + timedelta(microseconds=us)
            for m in load:
                copy.write_row((m.id, ts, state.reading(m, us)))
            copy.write_row((job.probe_meter, ts, job.probe_start))
            rows += len(load) + 1
            last_us = us
    for m in load:
        job = job.with_meter(replace(m, start_value=state.value[m.id], start_us=last_us))
    job = replace(job, probe_start_us=last_us, shift_us=now_us() - (last_us + step_us))
    conn.execute("ANALYZE readings")
    mark_all_dirty(conn)  # the engine catches up on them before the load starts
    return job, rows


def warm_up(
    conn: Conn,
    broker: Broker,
    job: LoadJob,
    gateways: Sequence[Gateway],
    services: list[Service],
    timeout: float = 60.0,
) -> tuple[LoadJob, float]:
    """Until the ingestor has subscribed, published messages are dropped: publish the
    first load meter's next reading (its start value again) every 0.3 s until it is
    stored, then wait for the engine to clear every mark (with --fill-minutes, its
    catch-up on the filled hour). The load continues that meter from the reading.
    Returns the job and the seconds taken."""
    gw = next(g for g in job.gateways if g.user != job.probe_gateway and g.meters)
    warm = next(m for m in gw.meters if not m.delta)
    site_gw = next(g for g in gateways if g.id == gw.user)
    us = max(now_us() - job.shift_us, warm.start_us + 1000)
    value = warm.start_value % warm.rollover if warm.rollover else warm.start_value
    payload = single_payload(us_to_iso(us), value, warm.unit)
    client, _ = mqtt_connect(broker.port, site_gw.id, broker.password(site_gw.id))
    t0 = time.monotonic()

    def check(what: str) -> None:
        for s in services:
            s.check()
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"warm-up: {what} after {timeout:g} s")

    try:
        sql = "SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s"
        while not conn.execute(sql, (warm.id, EPOCH + timedelta(microseconds=us))).fetchone():
            check("reading not stored")
            client.publish(topics.reading(PREFIX, site_gw.site, warm.id), payload, qos=1)
            time.sleep(0.3)
    finally:
        mqtt_close(client)
    while int(scalar(conn, "SELECT count(*) FROM dirty_meter_hours")) > 0:
        check("the engine did not clear the dirty marks")
        time.sleep(0.05)
    return job.with_meter(replace(warm, start_us=us)), time.monotonic() - t0


ENGINE_TABLES = (
    "readings",
    "hourly_emissions",
    "dirty_meter_hours",
    "data_quality_events",
    "meter_engine_state",  # the engine's per-meter watermark, where the schema has it
)


def reset_engine_tables(conn: Conn) -> None:
    """Empty the readings and everything the engine derived from them."""
    present = [t for t in ENGINE_TABLES if scalar(conn, "SELECT to_regclass(%s)", (t,))]
    conn.execute("TRUNCATE " + ", ".join(present))


def compare_with_rebuild(settings: Settings, conn: Conn) -> dict[str, Any]:
    """After the live run (services stopped): are the hours the live engine wrote
    those a full recomputation from the raw readings gives? Every meter-hour is
    marked dirty and `refresh_until_clean` recomputes it here; rows, estimated flags
    and consumption (relative 1e-9, absolute 1e-9 near 0) are compared."""
    sql = "SELECT meter_id, hour, consumption, estimated FROM hourly_emissions"
    live = {(m, h): (c, e) for m, h, c, e in conn.execute(sql).fetchall()}
    mark_all_dirty(conn)
    engine = make_engine(settings)
    t0 = time.perf_counter()
    try:
        refresh_until_clean(engine)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - t0
    rebuilt = {(m, h): (c, e) for m, h, c, e in conn.execute(sql).fetchall()}
    differing = [
        k
        for k in live.keys() & rebuilt.keys()
        if live[k][1] != rebuilt[k][1]
        or not math.isclose(live[k][0], rebuilt[k][0], rel_tol=1e-9, abs_tol=1e-9)
    ]
    worst = max(
        (abs(live[k][0] - rebuilt[k][0]) for k in live.keys() & rebuilt.keys()), default=0.0
    )
    return {
        "hour_rows_live": len(live),
        "hour_rows_rebuilt": len(rebuilt),
        "only_live": len(live.keys() - rebuilt.keys()),
        "only_rebuilt": len(rebuilt.keys() - live.keys()),
        "differing": len(differing),
        "max_abs_difference": worst,
        "rebuild_s": seconds,
        "equal": live.keys() == rebuilt.keys() and not differing,
    }


def run_freshness(
    args: argparse.Namespace,
    settings: Settings,
    conn: Conn,
    broker: Broker,
    meters: Sequence[MeterRow],
    gateways: Sequence[Gateway],
    sizes: Sizes,
    workdir: Path,
    profiler: Profiler,
    stack: contextlib.ExitStack,
) -> dict[str, Any]:
    reset_engine_tables(conn)
    job = load_plan(meters, gateways, broker, sizes)
    filled = 0
    if args.fill_minutes:
        job, filled = fill_hour(conn, job, args.fill_minutes)
    ingestor = start_service(
        shlex.split(args.ingest_cmd), settings, broker, INGEST_USER, workdir, "ingestor"
    )
    stack.callback(ingestor.stop)
    engine_proc = start_service(
        shlex.split(args.engine_cmd), settings, broker, ENGINE_USER, workdir, "engine"
    )
    stack.callback(engine_proc.stop)
    services = [ingestor, engine_proc]
    job, warm_s = warm_up(conn, broker, job, gateways, services, 60 + 15 * args.fill_minutes)
    observer = ProbeObserver(settings, job.probe_meter, sizes.observe_interval_s)
    monitor = BacklogMonitor(settings, engine_proc, sizes.backlog_interval_s)
    ingest_before, engine_before = ingestor.metrics(), engine_proc.metrics()
    target = job.probes - 1
    with PublisherGroup([job]) as load:
        observer.start()
        monitor.start()
        try:
            with profiler.record(engine_proc.pid, "freshness-engine"):
                load.go()
                [report] = load.results(sizes.load_seconds + 120)
            # Until the last probe is reflected and the backlog is empty.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (
                observer.latest() < target - 1e-9 or monitor.dirty_now() != 0
            ):
                for s in services:
                    s.check()
                time.sleep(0.05)
            drained_at = time.time() if monitor.dirty_now() == 0 else None
            time.sleep(2 * sizes.backlog_interval_s)
        finally:
            observer.stop()
            monitor.stop()
    ingest_after, engine_after = ingestor.metrics(), engine_proc.metrics()
    engine_proc.stop()
    ingestor.stop()
    if observer.error or monitor.error:
        raise RuntimeError(observer.error or monitor.error)
    received = {
        (ts - EPOCH) // timedelta(microseconds=1): at.timestamp()
        for ts, at in conn.execute(
            "SELECT ts, received_at FROM readings WHERE meter_id = %s", (job.probe_meter,)
        ).fetchall()
    }
    stored = int(scalar(conn, "SELECT count(*) FROM readings"))
    expected = report.readings + 1 + filled  # + the warm-up reading
    rebuild = compare_with_rebuild(settings, conn)
    fresh = freshness_figures(report, observer, received, window_s=5.0)
    return {
        "offered_readings_per_s": sizes.readings_per_s,
        "readings_per_message": sizes.batch_size,
        "seconds": sizes.load_seconds,
        "fill_minutes": args.fill_minutes,
        "fill_readings": filled,
        "published_readings_per_s": report.readings
        / max(report.last_publish - report.first_publish, 1e-9),
        "max_publisher_lag_ms": 1000 * report.max_lag_s,
        "load_meters": sum(len(g.meters) for g in job.gateways),
        "load_gateways": sum(1 for g in job.gateways if g.meters),
        "probe_meter": job.probe_meter,
        "probe_interval_s": sizes.probe_interval_s,
        "warm_up_s": warm_s,  # with --fill-minutes: includes the engine's catch-up
        "readings": expected,
        "stored": stored,
        **fresh,
        "live_hours_vs_rebuild": rebuild,
        "verified": stored == expected
        and fresh["probes_not_reflected"] == 0
        and rebuild["equal"] is True,
        "backlog_drained_after_last_publish_s": None
        if drained_at is None
        else drained_at - report.last_publish,
        "engine_refresh": histogram_summary(
            engine_histogram(engine_before), engine_histogram(engine_after)
        ),
        "engine_hour_rows_written": engine_after.get(
            "emissions_engine_hour_rows_written_total", 0.0
        )
        - engine_before.get("emissions_engine_hour_rows_written_total", 0.0),
        "ingestor": metrics_delta(ingest_before, ingest_after),
        **backlog_figures(monitor.samples, report),
    }
