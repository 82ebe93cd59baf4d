"""An acknowledgement clicked in the console reaches the MQTT alert topic and a
webhook: it goes through alerts.state.acknowledge, whose outbox row the notifier
delivers (real broker, local webhook receiver, real browser)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr
from sqlalchemy import text

from alerts.outbox import Notifier, drain
from api.auth import Role
from api.console.users import create_user
from core.settings import Settings
from tests.alerts_harness import (
    SITE,
    alert_db,
    drift_viewer,
    fire_drift,
    open_alerts,
    park_with,
)
from tests.console_support import CHROMIUM, PASSWORD, browser, console_settings, serve, sign_in
from tests.kit.broker import Broker
from tests.test_alerts_notify import Receiver

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


def test_console_acknowledgement_reaches_the_alert_topic_and_a_webhook(
    database_factory: Callable[[], Settings], broker: Broker, tmp_path: Path
) -> None:
    with closing(Receiver(fail_first=0)) as receiver, drift_viewer(broker) as viewer:
        park = park_with(webhooks=[{"name": "ops", "url": receiver.url}])
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
            fire_drift(engine)
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
    assert by == "user:ops-admin"
    assert [m["change"]["event"] for m in seen] == ["firing", "acknowledged"]
    hooks = [json.loads(body) for _, body, _ in receiver.accepted]
    assert [h["event"] for h in hooks] == ["firing", "acknowledged"]
    assert {h["alert_id"] for h in hooks} == {alert_id}
