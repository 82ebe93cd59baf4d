"""Retained alert messages on `{prefix}/{site}/alerts/{rule}`.

The broker forces client id = user name, so two alert services holding a
connection each would keep taking it from one another. Alert changes are rare:
each delivery connects, publishes at QoS 1, waits for the PUBACK and disconnects.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notify import DeliveryError
from core import topics
from core.settings import Settings


def topic(settings: Settings, site: str, rule: str) -> str:
    return topics.alert(settings.mqtt_topic_prefix, site, rule)


def publish_retained(
    settings: Settings, topic_name: str, payload: dict[str, Any], timeout_s: float
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.mqtt_username)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    client.username_pw_set(settings.mqtt_username, password)
    accepted: list[bool] = []
    answered = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, rc: Any, p: object) -> None:
        accepted.append(not rc.is_failure)
        answered.set()

    client.on_connect = on_connect
    where = f"{settings.mqtt_host}:{settings.mqtt_port}"
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=settings.mqtt_keepalive_s)
    except OSError as exc:
        raise DeliveryError(f"MQTT connect to {where}: {exc}") from exc
    client.loop_start()
    try:
        if not answered.wait(timeout_s) or not accepted[0]:
            raise DeliveryError(f"MQTT connect to {where} as {settings.mqtt_username}: refused")
        info = client.publish(topic_name, json.dumps(payload), qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise DeliveryError(f"MQTT publish to {topic_name}: no PUBACK (rc {info.rc})")
    except (RuntimeError, ValueError) as exc:  # paho: not connected, queue full
        raise DeliveryError(f"MQTT publish to {topic_name}: {exc}") from exc
    finally:
        client.disconnect()
        client.loop_stop()
