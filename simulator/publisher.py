"""A thin paho-mqtt adapter: one persistent client per gateway, QoS 1, bounded window.

Gateways log in with their own broker user (the gateway id) and password from the
broker's password files in the state directory, exactly as the ACL expects.
At most `window` messages per gateway are unacknowledged: paho's packet ids wrap
at 65,535, and a long queue inside paho makes every PUBACK slower.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.logs import get_logger
from core.paths import mqtt_password_file

log = get_logger("simulator")


class SimulatorError(RuntimeError):
    """A problem the operator must fix (missing password, broker unreachable)."""


class Sink(Protocol):
    def publish(self, gateway: str, topic: str, payload: bytes) -> None: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...


class NullSink:
    """Publishes nothing: `--dry-run` (the ledger alone)."""

    def publish(self, gateway: str, topic: str, payload: bytes) -> None:
        return None

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


def gateway_passwords(state_dir: Path, gateways: Iterable[str]) -> dict[str, str]:
    out = {}
    for gw in gateways:
        path = mqtt_password_file(state_dir, gw)
        try:
            out[gw] = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise SimulatorError(
                f"no broker password for gateway {gw!r} at {path}: render the broker for this "
                "park first (`emissions broker render`, or scripts/setup.sh)"
            ) from None
    return out


class MqttSink:
    def __init__(
        self,
        host: str,
        port: int,
        passwords: dict[str, str],
        *,
        window: int = 100,
        timeout_s: float = 60.0,
    ) -> None:
        self.host, self.port = host, port
        self.passwords = passwords
        self.window = window
        self.timeout_s = timeout_s
        self.clients: dict[str, mqtt.Client] = {}
        self.pending: dict[str, deque[mqtt.MQTTMessageInfo]] = {}

    def _client(self, gateway: str) -> mqtt.Client:
        client = self.clients.get(gateway)
        if client is not None:
            return client
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=gateway,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(gateway, self.passwords[gateway])
        client.max_inflight_messages_set(self.window)
        client.reconnect_delay_set(1, 10)
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            if getattr(rc, "is_failure", False):
                refused.append(str(rc))
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise SimulatorError(
                f"cannot reach the broker at {self.host}:{self.port}: {exc}"
            ) from None
        client.loop_start()
        if not connected.wait(10) or refused:
            client.loop_stop()
            raise SimulatorError(f"broker refused gateway {gateway!r}: {refused or 'no CONNACK'}")
        log.info("gateway_connected", gateway=gateway)
        self.clients[gateway] = client
        self.pending[gateway] = deque()
        return client

    def connect(self) -> None:
        """Log every gateway in now, so a wrong password or port fails before any work."""
        for gateway in sorted(self.passwords):
            self._client(gateway)

    def publish(self, gateway: str, topic: str, payload: bytes) -> None:
        client = self._client(gateway)
        queue = self.pending[gateway]
        queue.append(client.publish(topic, payload, qos=1))
        while len(queue) > self.window:
            self._wait(queue.popleft())

    def _wait(self, info: mqtt.MQTTMessageInfo) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not info.is_published():
            if time.monotonic() > deadline:
                raise SimulatorError("the broker acknowledged nothing for a minute")
            try:
                info.wait_for_publish(0.5)
            except RuntimeError:  # sent while disconnected: paho resends it on reconnect
                time.sleep(0.1)

    def drain(self) -> None:
        for queue in self.pending.values():
            while queue:
                self._wait(queue.popleft())

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        self.clients.clear()
