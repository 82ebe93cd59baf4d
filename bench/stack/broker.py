"""A private Mosquitto broker on a free port, and MQTT clients in this process."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bench.stack.processes import free_port, stop_process, wait_for_port
from core.broker.render import render_broker
from core.park.models import Park
from core.paths import mqtt_password_file

PREFIX = "parks"


@dataclass
class Broker:
    port: int
    state_dir: Path
    config_dir: Path
    proc: subprocess.Popen[bytes]

    def password(self, user: str) -> str:
        return mqtt_password_file(self.state_dir, user).read_text(encoding="utf-8").strip()


def start_broker(park: Park, base: Path, stack: contextlib.ExitStack) -> Broker:
    """Like tests/conftest.py: the project's rendered configuration on a free port."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    state_dir, config_dir = base / "state", base / "mosquitto"
    port = free_port()
    render_broker(park, config_dir, state_dir=state_dir, prefix=PREFIX, bind="127.0.0.1", port=port)
    proc = subprocess.Popen(
        [mosquitto, "-c", str(config_dir / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us; we stop it after the ingestor
    )
    stack.callback(stop_process, proc)
    wait_for_port(port, proc)
    return Broker(port, state_dir, config_dir, proc)


def mqtt_connect(
    port: int,
    user: str,
    password: str,
    clean_session: bool = True,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None] | None = None,
) -> tuple[mqtt.Client, threading.Event]:
    """Connected client with its loop running; the event is set on SUBACK. `on_message`
    is set before connecting: a resumed session delivers right after CONNACK."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=user,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=clean_session,
    )
    client.username_pw_set(user, password)
    connected, subscribed = threading.Event(), threading.Event()
    refused: list[str] = []

    def on_connect(
        c: mqtt.Client,
        u: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    def on_subscribe(
        c: mqtt.Client,
        u: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not connected.wait(10) or refused:
        client.loop_stop()
        raise RuntimeError(f"broker refused {user}: {refused or 'no CONNACK'}")
    return client, subscribed


def mqtt_close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def wipe_session(broker: Broker, user: str) -> None:
    """A persistent session left behind would make the broker queue every later
    run's messages for it: connect once with clean_session=True to discard it."""
    client, _ = mqtt_connect(broker.port, user, broker.password(user), clean_session=True)
    mqtt_close(client)
