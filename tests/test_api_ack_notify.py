"""An acknowledgement through the API is a state change like any other (issue 14
item 1): it goes through `alerts.state.acknowledge`, so it reaches the MQTT alert
topic, the site's webhooks and Alertmanager, on the real peers."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing

from fastapi.testclient import TestClient
from sqlalchemy import text

from alerts.outbox import Notifier, drain
from api.app import create_app
from api.auth import Role, create_key
from core.settings import Settings
from tests import test_alerts_notify as peers
from tests.alerts_harness import (
    alert_db,
    drift_viewer,
    fire_drift,
    open_alerts,
    park_with,
)
from tests.api_support import bearer
from tests.kit.broker import Broker

alertmanager = peers.alertmanager  # the real Alertmanager fixture of the alert tests


def test_api_ack_reaches_mqtt_webhook_and_alertmanager(
    database_factory: Callable[[], Settings], broker: Broker, alertmanager: str
) -> None:
    with closing(peers.Receiver(fail_first=0)) as receiver, drift_viewer(broker) as viewer:
        park = park_with(webhooks=[{"name": "ops", "url": receiver.url}])
        with alert_db(database_factory, park) as (base, engine):
            settings = peers._settings(base, broker, alerts_alertmanager_url=alertmanager)
            notifier = Notifier(settings, peers.SECRET)
            fire_drift(engine)
            [(alert_id, *_)] = open_alerts(engine, "roadmap_drift")
            drain(engine, notifier)
            with engine.begin() as conn:
                token = create_key(conn, "duty-admin", Role.admin)
            with TestClient(create_app(settings, engine)) as client:
                acked = client.post(
                    f"/v1/alerts/{alert_id}/ack", json={"note": "on it"}, headers=bearer(token)
                )
            assert acked.status_code == 200, acked.text
            assert acked.json()["state"] == "acknowledged"
            drain(engine, notifier)
            with engine.connect() as conn:
                delivered = conn.execute(
                    text(
                        "SELECT d.channel, count(*) FROM alert_deliveries d "
                        "JOIN alert_outbox o ON o.id = d.outbox_id "
                        "JOIN alert_events e ON e.id = o.event_id "
                        "WHERE e.state = 'acknowledged' AND d.state = 'delivered' GROUP BY 1"
                    )
                ).all()
            [shown] = peers._active_in(alertmanager)
        seen = [json.loads(viewer.messages.get(timeout=10).payload) for _ in range(2)]
    assert sorted(delivered) == [("alertmanager", 1), ("mqtt", 1), ("webhook", 1)]
    hooks = [json.loads(body) for _, body, _ in receiver.accepted]
    assert [h["event"] for h in hooks] == ["firing", "acknowledged"]
    assert hooks[1]["acknowledged_by"] == "duty-admin"
    assert hooks[1]["detail"] == "by duty-admin: on it"
    assert [m["change"]["event"] for m in seen] == ["firing", "acknowledged"]
    assert seen[1]["open"][0]["acknowledged_by"] == "duty-admin"
    assert shown["annotations"]["acknowledged_by"] == "duty-admin"
