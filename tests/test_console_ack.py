"""An acknowledgement clicked in the console reaches the MQTT alert topic and a
webhook: it goes through alerts.state.acknowledge, whose outbox row the notifier
delivers (real broker, local webhook receiver, real browser)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr
from sqlalchemy import text

from alerts.evaluate import evaluate
from alerts.outbox import Notifier, drain
from api.auth import Role
from api.console.users import create_user
from core.settings import Settings
from tests.alerts_harness import SITE, T0, alert_db, open_alerts, park_with, set_level
from tests.console_support import CHROMIUM, PASSWORD, browser, console_settings, serve, sign_in
from tests.kit.broker import Broker
from tests.mqtt import connect
from tests.test_alerts_notify import Receiver

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


def test_console_acknowledgement_reaches_the_alert_topic_and_a_webhook(
    database_factory: Callable[[], Settings], broker: Broker, tmp_path: Path
) -> None:
    receiver = Receiver(fail_first=0)
    topic = f"parks/{SITE}/alerts/roadmap_drift"
    cleaner = connect(broker.port, "svc-alerts", broker.password("svc-alerts"))
    cleaner.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    cleaner.close()  # other tests may have left a retained message on the topic
    viewer = connect(broker.port, "svc-viewer", broker.password("svc-viewer"))
    viewer.client.subscribe(topic, qos=1)
    park = park_with(webhooks=[{"name": "ops", "url": receiver.url}])
    try:
        with alert_db(database_factory, park) as (base, engine):
            settings = console_settings(base, tmp_path).model_copy(
                update={
                    "mqtt_port": broker.port,
                    "mqtt_username": "svc-alerts",
                    "mqtt_password": SecretStr(broker.password("svc-alerts")),
                    "alerts_webhook_secret": SecretStr("webhook-secret"),
                }
            )
            notifier = Notifier(settings)
            set_level(engine, 2.0, T0 + timedelta(days=1))
            evaluate(engine, T0)
            evaluate(engine, T0 + timedelta(hours=1))
            [(alert_id, *_)] = open_alerts(engine, "roadmap_drift")
            drain(engine, notifier)  # the firing notification
            with engine.begin() as conn:
                create_user(conn, "ops-admin", PASSWORD, Role.admin, locale="en")
            with serve(settings, engine) as console, browser() as chromium:
                page = sign_in(chromium, console.url, "ops-admin")
                page.goto(console.url + f"/console/alerts?site={SITE}")
                row = page.locator(f"#alert-{alert_id}")
                with page.expect_navigation():
                    row.locator("button.ack").click()
                expect(page.locator(f"#alert-{alert_id} td.state")).to_have_text("acknowledged")
            drain(engine, notifier)
            with engine.connect() as conn:
                by = conn.execute(
                    text("SELECT acknowledged_by FROM alerts WHERE id = :i"), {"i": alert_id}
                ).scalar_one()
        seen = [json.loads(viewer.messages.get(timeout=10).payload) for _ in range(2)]
    finally:
        viewer.close()
        receiver.close()
    assert by == "user:ops-admin"
    assert [m["change"]["event"] for m in seen] == ["firing", "acknowledged"]
    hooks = [json.loads(body) for _, body, _ in receiver.accepted]
    assert [h["event"] for h in hooks] == ["firing", "acknowledged"]
    assert {h["alert_id"] for h in hooks} == {alert_id}
