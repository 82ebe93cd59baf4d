"""Small synchronous helpers around paho-mqtt 2.x for tests on the real broker."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


@dataclass
class TestClient:
    client: mqtt.Client
    connack: ReasonCode | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: queue.Queue[tuple[int, list[ReasonCode]]] = field(default_factory=queue.Queue)

    def subscribe(self, filters: list[str], timeout: float = 5.0) -> list[ReasonCode]:
        """Subscribe at QoS 1 and return the broker's SUBACK codes: from then on,
        a message published on these filters reaches this client."""
        _, mid = self.client.subscribe([(f, 1) for f in filters])
        while True:
            got, codes = self.subacks.get(timeout=timeout)
            if got == mid:
                return codes

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def received(self, timeout: float = 1.0) -> list[str]:
        topics = []
        while True:
            try:
                topics.append(self.messages.get(timeout=timeout).topic)
            except queue.Empty:
                return topics


def connect(
    port: int,
    username: str | None,
    password: str | None,
    client_id: str = "",
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    timeout: float = 5.0,
) -> TestClient:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    state = TestClient(client)
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(
        c: mqtt.Client, u: object, flags: object, rc: ReasonCode, props: Properties | None
    ) -> None:
        state.connack = rc
        state.connected.set()

    def on_disconnect(
        c: mqtt.Client, u: object, flags: object, rc: ReasonCode, props: Properties | None
    ) -> None:
        state.disconnected.set()
        state.connected.set()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        state.messages.put(msg)

    def on_publish(
        c: mqtt.Client, u: object, mid: int, rc: ReasonCode, props: Properties | None
    ) -> None:
        state.pubacks[mid] = rc

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.on_publish = on_publish
    client.on_subscribe = lambda c, u, mid, codes, props: state.subacks.put((mid, list(codes)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not state.connected.wait(timeout):
        raise TimeoutError("no CONNACK")
    return state
