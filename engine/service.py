"""The engine loop: recompute dirty meters, publish the live CO2e rate.

Several engine processes may run: a batch claims its meters with
transaction-scoped advisory try-locks, and a meter another process holds is
skipped for this pass.
"""

from __future__ import annotations

import gc
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.errors import DeadlockDetected, SerializationFailure
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from core import topics
from core.logs import get_logger
from core.settings import Settings
from engine import marks, metrics
from engine import repository as repo
from engine.refresh import refresh_batch

log = get_logger("engine")


# A batch is one transaction: up to this many meters, and this many dirty
# meter-hours unless one meter alone has more (its readings are held in memory;
# small enough that a rebuild splits into batches several engines can share).
BATCH_METERS = 1000
BATCH_HOURS = 5_000
# How long a rebuild waits when other engines hold every dirty meter.
HELD_ELSEWHERE_WAIT_S = 0.05


class _CycleCollectorPause:
    """Python's cycle collector off while a batch computes. A batch builds millions
    of small tuples (a reading, an interval each) and no cycles; with the collector
    on, it walked them again and again and took more than half of a recomputation's
    time. What the batch leaves behind is freed by reference counting. The switch
    is process-wide and worker threads' batches overlap, so it is counted: off when
    the first batch starts, on again when the last one ends (if it was on before)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = True

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


cyclic_gc_paused = _CycleCollectorPause()


def in_threads(tasks: Sequence[Callable[[], int]], stop: threading.Event | None = None) -> int:
    """Run the tasks at once, one thread each; the sum of what they return. The
    first error ends them all (through `stop`, when given) and is raised here.

    Why threads: a worker spends about half of a batch waiting for the store, and
    the GIL is free meanwhile, so two workers keep both cores of a small machine
    busy (the recompute benchmark: 1.5x one worker in one process)."""
    if len(tasks) == 1:
        return tasks[0]()
    results = [0] * len(tasks)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = tasks[i]()
        except BaseException as exc:  # raised in the caller below
            errors.append(exc)
            if stop is not None:
                stop.set()

    # Daemon threads: an interrupted rebuild exits at once; its open batches roll back.
    threads = [
        threading.Thread(target=work, args=(i,), name=f"engine-worker-{i}", daemon=True)
        for i in range(len(tasks))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)  # timed: Ctrl-C in a rebuild reaches this thread at once
    if errors:
        raise errors[0]
    return sum(results)


def refresh_pass(
    engine: Engine,
    limit: int = 20_000,
    *,
    batch_meters: int = BATCH_METERS,
    batch_hours: int = BATCH_HOURS,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    workers: int = 1,
) -> tuple[int, int]:
    """One pass over up to `limit` dirty meters, oldest marks first, in batches:
    (meters refreshed, hour rows written). `progress` gets each batch's
    meter-hours once it is committed. A set `stop` ends the pass after the batch
    in hand: a pass through a backfill holds minutes of batches, and a service
    asked to stop should not wait for all of them (what is left stays marked).
    `workers`: how many threads of this process work through the same passes
    (`marks.plan_batches` deals a backlog's meters out to them)."""
    with engine.connect() as conn:
        dirty = marks.dirty_meters(conn, limit)
        plan = marks.plan_batches(conn, dirty, batch_meters, batch_hours, workers)
    refreshed = written = 0
    for batch in plan:
        if stop is not None and stop.is_set():
            break
        started = time.perf_counter()
        try:
            # READ COMMITTED + explicit locks (docs/engine.md)
            with cyclic_gc_paused(), engine.begin() as conn:
                done = refresh_batch(conn, batch.meters, batch.hours)
        except OperationalError as exc:
            if not isinstance(exc.orig, DeadlockDetected | SerializationFailure):
                raise
            # Not expected with the lock order (docs/engine.md); nothing was
            # written and the marks are still there, so the next pass retries.
            log.warning(
                "engine_batch_retry", meters=len(batch.meters), error=type(exc.orig).__name__
            )
            continue
        if done is None:
            continue
        metrics.REFRESH_SECONDS.observe(time.perf_counter() - started)
        metrics.METER_HOURS.inc(done[1])
        refreshed += done[0]
        written += done[1]
        if progress is not None:
            progress(batch.marks)
    metrics.LAST_PASS.set(time.time())
    return refreshed, written


def refresh_until_clean(
    engine: Engine,
    max_passes: int = 1000,
    *,
    batch_meters: int = BATCH_METERS,
    batch_hours: int = BATCH_HOURS,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    pending: Callable[[Connection], int] = marks.dirty_count,
) -> int:
    """Refresh until `pending` counts no mark left (default: the whole queue; a
    rebuild counts its own range's), in `workers` threads; returns hour rows
    written. `progress` as for `refresh_pass`.

    Other engines may share the work: a pass that could claim nothing (they hold
    every dirty meter) waits a moment for their batches to commit instead of
    asking again at once."""

    def drain() -> int:
        total = 0
        for _ in range(max_passes):
            with engine.connect() as conn:
                if pending(conn) == 0:
                    return total
            refreshed, written = refresh_pass(
                engine,
                batch_meters=batch_meters,
                batch_hours=batch_hours,
                progress=progress,
                workers=workers,
            )
            total += written
            if not refreshed:
                time.sleep(HELD_ELSEWHERE_WAIT_S)
        raise RuntimeError("dirty marks did not drain")

    return in_threads([drain] * workers)


class LivePublisher:
    """Retained `parks/{site}/emissions/live` messages and the live-rate gauge."""

    def __init__(self, settings: Settings) -> None:
        self._prefix = settings.mqtt_topic_prefix
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.mqtt_username)
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        self._client.username_pw_set(settings.mqtt_username, password)
        self._client.reconnect_delay_set(1, 30)
        self._client.connect_async(settings.mqtt_host, settings.mqtt_port)
        self._client.loop_start()

    def publish(self, engine: Engine) -> None:
        now = datetime.now(UTC)
        with engine.connect() as conn:
            rates = repo.live_rates(conn, now)
        by_site: dict[str, dict[str, float]] = defaultdict(dict)
        for site, enterprise, rate in rates:
            by_site[site][enterprise] = round(rate, 3)
        for site, enterprises in by_site.items():
            total = round(sum(enterprises.values()), 3)
            metrics.LIVE_RATE.labels(site).set(total * 1000 / 3600)
            payload = {
                "site": site,
                "co2e_kg_per_h": total,
                "by_enterprise": enterprises,
                "at": now.isoformat().replace("+00:00", "Z"),
            }
            topic = topics.live(self._prefix, site)
            self._client.publish(topic, json.dumps(payload), qos=1, retain=True)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def run(
    engine: Engine,
    settings: Settings,
    stop: threading.Event,
    poll_s: float = 0.2,
    live_every_s: float = 10.0,
) -> None:
    """Refresh passes in `settings.engine_workers` threads until `stop`, beside one
    that reports the backlog and publishes the live rate."""
    publisher = LivePublisher(settings)
    workers = settings.engine_workers
    refresh = partial(_refresh_loop, engine, stop, poll_s, workers)
    report = partial(_report_loop, engine, stop, publisher, poll_s, live_every_s)
    try:
        in_threads([report, *[refresh] * workers], stop)
    finally:
        publisher.close()


def _refresh_loop(engine: Engine, stop: threading.Event, poll_s: float, workers: int) -> int:
    """One worker's passes until `stop`: the hour rows it wrote."""
    total = 0
    while not stop.is_set():
        refreshed = 0
        try:
            refreshed, written = refresh_pass(engine, stop=stop, workers=workers)
            total += written
            if refreshed:
                log.info("engine_pass", meters=refreshed, hours=written)
        except DBAPIError as exc:  # the database may be restarting: retry, say why
            log.warning("engine_pass_failed", error=str(exc).strip()[:200])
            stop.wait(2.0)
        if not refreshed:
            stop.wait(poll_s)
    return total


def _report_loop(
    engine: Engine,
    stop: threading.Event,
    publisher: LivePublisher,
    poll_s: float,
    live_every_s: float,
) -> int:
    """The backlog gauge every `poll_s`, the live rate every `live_every_s`."""
    last_live = -math.inf
    while not stop.is_set():
        try:
            with engine.connect() as conn:
                metrics.DIRTY.set(marks.dirty_count(conn))
            if time.monotonic() - last_live > live_every_s:
                publisher.publish(engine)
                last_live = time.monotonic()
        except DBAPIError as exc:  # as in _refresh_loop
            log.warning("engine_report_failed", error=str(exc).strip()[:200])
            stop.wait(2.0)
        stop.wait(poll_s)
    return 0
