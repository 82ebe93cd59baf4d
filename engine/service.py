"""The engine loop: recompute dirty meters, publish the live CO2e rate.

Several engine processes may run: each meter is recomputed under a
transaction-scoped advisory lock, and a meter another process holds is skipped
for this pass.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from core.logs import get_logger
from core.settings import Settings
from engine import marks, metrics
from engine import repository as repo
from engine.refresh import refresh_meter

log = get_logger("engine")


def refresh_pass(engine: Engine, limit: int = 500) -> tuple[int, int]:
    """One pass over the dirty meters: (meters refreshed, hour rows written)."""
    with engine.connect() as conn:
        meters = marks.dirty_meters(conn, limit)
    refreshed = written = 0
    for meter_id in meters:
        started = time.perf_counter()
        try:
            with (
                engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
                conn.begin(),
            ):
                rows = refresh_meter(conn, meter_id)
        except OperationalError as exc:
            # A concurrent ingest commit re-stamped a mark this snapshot read
            # (serialization failure): nothing was written; the next pass retries.
            log.info("engine_meter_retry", meter=meter_id, error=type(exc.orig).__name__)
            continue
        if rows is None:
            continue
        metrics.REFRESH_SECONDS.observe(time.perf_counter() - started)
        metrics.METER_HOURS.inc(rows)
        refreshed += 1
        written += rows
    metrics.LAST_PASS.set(time.time())
    return refreshed, written


def refresh_until_clean(engine: Engine, max_passes: int = 1000) -> int:
    """Refresh until no mark is left (tests, rebuilds); returns hour rows written."""
    total = 0
    for _ in range(max_passes):
        with engine.connect() as conn:
            if marks.dirty_count(conn) == 0:
                return total
        total += refresh_pass(engine)[1]
    raise RuntimeError("dirty marks did not drain")


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
            topic = f"{self._prefix}/{site}/emissions/live"
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
    publisher = LivePublisher(settings)
    last_live = 0.0
    try:
        while not stop.is_set():
            refreshed = 0
            try:
                refreshed, written = refresh_pass(engine)
                with engine.connect() as conn:
                    metrics.DIRTY.set(marks.dirty_count(conn))
                if refreshed:
                    log.info("engine_pass", meters=refreshed, hours=written)
                if time.monotonic() - last_live > live_every_s:
                    publisher.publish(engine)
                    last_live = time.monotonic()
            except DBAPIError as exc:  # the database may be restarting: retry, say why
                log.warning("engine_pass_failed", error=str(exc).strip()[:200])
                stop.wait(2.0)
            if not refreshed:
                stop.wait(poll_s)
    finally:
        publisher.close()
