"""`emissions alerts run` as real processes: two services at once on the real store
and broker keep one alert, notify it once, and serve /healthz and /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
from sqlalchemy import text

from core.settings import Settings
from tests.alerts_harness import SITE, alert_db, drift_viewer, open_alerts, park_with, set_level
from tests.kit.broker import Broker, free_port

EMISSIONS = Path(sys.executable).with_name("emissions")


def _metric(port: int, line_start: str) -> float | None:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_two_services_at_once(
    database_factory: Callable[[], Settings], broker: Broker, tmp_path: Path
) -> None:
    park = park_with(drift={"windows": ["trailing_7d"], "for_s": 0})
    with alert_db(database_factory, park) as (settings, engine), drift_viewer(broker) as viewer:
        set_level(engine, 2.0, datetime.now(UTC))
        assert settings.db_password is not None
        env = {
            **os.environ,
            "EMISSIONS_STATE_DIR": str(tmp_path),
            "EMISSIONS_DB_NAME": settings.db_name,
            "EMISSIONS_DB_PASSWORD": settings.db_password.get_secret_value(),
            "EMISSIONS_MQTT_PORT": str(broker.port),
            "EMISSIONS_MQTT_PASSWORD": broker.password("svc-alerts"),
            "EMISSIONS_ALERTS_EVALUATION_INTERVAL_S": "0.3",
        }
        ports = [free_port(), free_port()]
        procs = [
            subprocess.Popen([str(EMISSIONS), "alerts", "run", "--health-port", str(p)], env=env)
            for p in ports
        ]
        try:
            firing = f'emissions_alerts_firing{{rule="roadmap_drift",site="{SITE}"}}'
            for port in ports:
                _wait_for(partial(_ready, port), "/healthz")
                _wait_for(partial(_fires, port, firing), "the firing gauge")
                last = _metric(port, "emissions_alerts_last_evaluation_timestamp_seconds")
                assert last is not None and last > 0
            message = viewer.messages.get(timeout=30)
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            assert [proc.wait(timeout=30) for proc in procs] == [0, 0]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert [(a[2], a[3]) for a in open_alerts(engine)] == [(f"{SITE}/trailing_7d", "firing")]
        with engine.connect() as conn:
            deliveries = conn.execute(
                text("SELECT channel, state FROM alert_deliveries ORDER BY id")
            ).all()
            events = conn.execute(text("SELECT count(*) FROM alert_events")).scalar_one()
    assert events == 1
    assert [tuple(d) for d in deliveries] == [("mqtt", "delivered")]
    assert json.loads(message.payload)["change"]["event"] == "firing"
    assert viewer.messages.empty()


def _fires(port: int, series: str) -> bool:
    return _metric(port, series) == 1.0


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
