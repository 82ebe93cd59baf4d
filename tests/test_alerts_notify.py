"""Alert notifications on the real stack: signed webhooks with retries and dead
letters, retained MQTT messages on the real broker, and a real Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import Engine, text

from alerts.evaluate import evaluate
from alerts.notify import DeliveryError
from alerts.notify.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify, webhook_secret
from alerts.outbox import Notifier, drain
from alerts.state import acknowledge
from core.settings import Environment, Settings
from tests.alerts_harness import (
    DRIFT_TOPIC,
    SITE,
    T0,
    alert_db,
    drift_viewer,
    fire_drift,
    open_alerts,
    park_with,
    set_level,
)
from tests.kit.broker import Broker, free_port
from tests.kit.mqtt import subscribed
from tests.kit.serving import serving_process

SECRET = b"test-webhook-secret"
AM_BINARY = Path("/usr/bin/prometheus-alertmanager")


class Receiver:
    """A local HTTP endpoint that fails the first `fail_first` tries of each delivery."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.tries: dict[str, int] = {}
        self.accepted: list[tuple[str, bytes, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers[DELIVERY_HEADER]
                receiver.tries[delivery] = receiver.tries.get(delivery, 0) + 1
                ok = receiver.tries[delivery] > receiver.fail_first
                if ok:
                    receiver.accepted.append((delivery, body, self.headers[SIGNATURE_HEADER]))
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with closing(Receiver(fail_first=2)) as r:
        yield r


def _notifications(channel: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "emissions_alerts_notifications_total", {"channel": channel, "result": result}
    )
    return value or 0.0


def _settings(base: Settings, broker: Broker, **overrides: Any) -> Settings:
    return base.model_copy(
        update={
            "mqtt_port": broker.port,
            "mqtt_username": "svc-alerts",
            "mqtt_password": SecretStr(broker.password("svc-alerts")),
            "alerts_retry_attempts": 3,
            "alerts_retry_wait_s": 0.01,
            "alerts_round_backoff_s": 0.0,
            **overrides,
        }
    )


def _fire_ack_resolve(engine: Engine, notifier: Notifier) -> int:
    """Three changes of one drift alert, delivered after each; returns the alert id."""
    fire_drift(engine)
    [(alert_id, *_)] = open_alerts(engine, "roadmap_drift")
    drain(engine, notifier)
    with engine.begin() as conn:
        acknowledge(conn, alert_id, "operator")
    drain(engine, notifier)
    set_level(engine, 0.5, T0 + timedelta(hours=2))
    evaluate(engine, T0 + timedelta(hours=2))
    assert open_alerts(engine, "roadmap_drift") == []
    drain(engine, notifier)
    return alert_id


def test_webhook_failing_twice_gets_one_signed_delivery_per_change(
    database_factory: Callable[[], Settings],
    broker: Broker,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    park = park_with(webhooks=[{"name": "ops", "url": receiver.url}])
    with alert_db(database_factory, park) as (base, engine):
        # No secret given: development generates one into the state directory.
        notifier = Notifier(_settings(base, broker, state_dir=tmp_path))
        before = _notifications("webhook", "failure")
        alert_id = _fire_ack_resolve(engine, notifier)
        with engine.connect() as conn:
            states = conn.execute(
                text("SELECT channel, state, count(*) FROM alert_deliveries GROUP BY 1, 2")
            ).all()
    assert sorted(states) == [("mqtt", "delivered", 3), ("webhook", "delivered", 3)]
    assert all(n == 3 for n in receiver.tries.values())  # 2 failures, then accepted
    assert len(receiver.tries) == 3
    assert _notifications("webhook", "failure") - before == 6
    bodies = [json.loads(body) for _, body, _ in receiver.accepted]
    assert [b["event"] for b in bodies] == ["firing", "acknowledged", "resolved"]
    assert {b["alert_id"] for b in bodies} == {alert_id}
    assert [str(b["delivery"]) for b in bodies] == [d for d, _, _ in receiver.accepted]
    secret_file = tmp_path / "secrets" / "alerts_webhook_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_bytes().strip()
    assert len(secret) == 64
    for _, body, signature in receiver.accepted:
        assert verify(secret, body, signature)
        assert not verify(b"another secret", body, signature)


def test_production_without_a_webhook_secret_fails_the_delivery(tmp_path: Path) -> None:
    settings = Settings(environment=Environment.production, state_dir=tmp_path)
    with pytest.raises(DeliveryError, match="EMISSIONS_ALERTS_WEBHOOK_SECRET"):
        webhook_secret(settings)
    assert not (tmp_path / "secrets").exists()
    configured = Settings(state_dir=tmp_path, alerts_webhook_secret=SecretStr("s"))
    assert webhook_secret(configured) == b"s"


def test_webhook_that_keeps_failing_is_dead_lettered(
    database_factory: Callable[[], Settings], broker: Broker
) -> None:
    with closing(Receiver(fail_first=1_000)) as failing:
        park = park_with(webhooks=[{"name": "down", "url": failing.url}])
        with alert_db(database_factory, park) as (base, engine):
            notifier = Notifier(_settings(base, broker, alerts_delivery_rounds=2), SECRET)
            before = _notifications("webhook", "dead_letter")
            fire_drift(engine)
            drain(engine, notifier)
            with engine.connect() as conn:
                dead = conn.execute(
                    text("SELECT target, attempts, payload->>'event' FROM alert_dead_letters")
                ).all()
                mqtt_state = conn.execute(
                    text("SELECT state FROM alert_deliveries WHERE channel = 'mqtt'")
                ).scalar_one()
    assert dead == [(failing.url, 2, "firing")]
    assert sum(failing.tries.values()) == 2 * 3  # two rounds of three tries
    assert mqtt_state == "delivered"  # one failing channel does not hold up another
    assert _notifications("webhook", "dead_letter") - before == 1


def test_retained_mqtt_message_on_every_change(
    database_factory: Callable[[], Settings], broker: Broker
) -> None:
    with drift_viewer(broker) as viewer:
        with alert_db(database_factory) as (base, engine):
            alert_id = _fire_ack_resolve(engine, Notifier(_settings(base, broker), None))
        seen: list[dict[str, Any]] = []
        while len(seen) < 3:
            message = viewer.messages.get(timeout=10)
            seen.append(json.loads(message.payload))
    assert [m["change"]["event"] for m in seen] == ["firing", "acknowledged", "resolved"]
    assert [len(m["open"]) for m in seen] == [1, 1, 0]
    assert seen[0]["open"][0]["alert_id"] == alert_id
    with subscribed(broker, "svc-viewer", DRIFT_TOPIC) as late:
        retained = late.messages.get(timeout=10)
    assert retained.retain
    assert json.loads(retained.payload)["change"]["event"] == "resolved"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if not AM_BINARY.exists():
        pytest.fail(f"{AM_BINARY} missing: scripts/setup.sh installs prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n"
    )
    argv = [
        str(AM_BINARY),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with serving_process(argv, url + "/-/ready", **quiet):
        yield url
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def _active_in(url: str) -> list[dict[str, Any]]:
    response = httpx.get(url + "/api/v2/alerts", params={"active": "true"}, timeout=5)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return [a for a in alerts if a["labels"].get("site") == SITE]


def test_alertmanager_shows_the_alert_and_drops_it_after_resolve(
    database_factory: Callable[[], Settings], broker: Broker, alertmanager: str
) -> None:
    with alert_db(database_factory) as (base, engine):
        notifier = Notifier(_settings(base, broker, alerts_alertmanager_url=alertmanager), None)
        fire_drift(engine)
        drain(engine, notifier)
        [shown] = _active_in(alertmanager)
        assert shown["labels"]["alertname"] == "roadmap_drift"
        assert shown["labels"]["subject"] == f"{SITE}/trailing_7d"
        assert shown["status"]["state"] == "active"
        set_level(engine, 0.5, T0 + timedelta(hours=2))
        evaluate(engine, T0 + timedelta(hours=2))
        drain(engine, notifier)
        assert _active_in(alertmanager) == []
