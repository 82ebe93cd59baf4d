"""The paho clients of one publisher process, all driven by the process's one thread."""

from __future__ import annotations

import multiprocessing.synchronize
import time
from collections.abc import Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# QoS 1 window per client. Kept moderate on purpose: paho re-scans its whole outgoing
# table on every PUBACK once messages queue behind a full window (_update_inflight),
# so a 2,000 window with a deep queue published at a third of the rate of this one.
INFLIGHT = 100


class Clients:
    """One client per gateway user (MQTT 3.1.1, QoS 1, clean session). This thread
    drives paho's loop itself: no GIL hand-off to loop threads, and never more than
    INFLIGHT unacknowledged per client, so nothing queues inside paho."""

    def __init__(self, users: Sequence[tuple[str, str]]) -> None:
        self.clients: dict[str, mqtt.Client] = {}
        self.sent: dict[str, int] = {}
        self.acked: dict[str, int] = {}
        self.acked_at = 0.0  # wall-clock time of the latest PUBACK
        self.refused: list[str] = []
        self._connected: set[str] = set()
        for user, password in users:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=user,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=True,
                userdata=user,
            )
            client.username_pw_set(user, password)
            client.max_inflight_messages_set(INFLIGHT)
            client.max_queued_messages_set(0)  # (never used: see publish)
            client.on_connect = self._on_connect
            client.on_publish = self._on_publish
            self.clients[user] = client
            self.sent[user] = self.acked[user] = 0

    def _on_connect(
        self,
        c: mqtt.Client,
        user: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.refused.append(f"{user}: {reason}")
        self._connected.add(str(user))

    def _on_publish(
        self, c: mqtt.Client, user: object, mid: int, reason: ReasonCode, props: Properties | None
    ) -> None:
        self.acked[str(user)] += 1
        self.acked_at = time.time()

    def drive(self, timeout: float = 0.0) -> None:
        """One turn of every client's loop, `timeout` seconds in all at most."""
        step = timeout / len(self.clients)
        for client in self.clients.values():
            client.loop(step)

    def connect(self, port: int, timeout: float = 10.0) -> None:
        for client in self.clients.values():
            client.connect("127.0.0.1", port, keepalive=60)
        deadline = time.monotonic() + timeout
        while len(self._connected) < len(self.clients) and time.monotonic() < deadline:
            self.drive(0.05)
        if self.refused or len(self._connected) < len(self.clients):
            missing = sorted(set(self.clients) - self._connected)
            raise RuntimeError(f"broker refused {missing}: {self.refused or 'no CONNACK'}")

    def wait_go(self, go: multiprocessing.synchronize.Event, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while not go.wait(0.05):
            self.drive()  # keep the connections alive while waiting
            if time.monotonic() > deadline:
                raise TimeoutError("no start signal")

    def wait_until(self, due: float) -> float:
        """Drive the loops until `due` (time.perf_counter()); returns how late it is."""
        now = time.perf_counter()
        while now < due:
            self.drive(min(due - now, 0.005))
            now = time.perf_counter()
        return now - due

    def wait_window(self, user: str) -> None:
        """Until `user`'s client has fewer than INFLIGHT messages unacknowledged."""
        while self.sent[user] - self.acked[user] >= INFLIGHT:
            self.clients[user].loop(0.005)

    def publish(self, user: str, topic: str, payload: bytes | str) -> None:
        self.wait_window(user)
        client = self.clients[user]
        k = self.sent[user]
        client.publish(topic, payload, qos=1)  # written to the socket right away
        self.sent[user] = k + 1
        if k % 32 == 0:
            client.loop(0)

    def wait_acked(self, timeout: float) -> float:
        """Until every message is acknowledged; returns when the last PUBACK came."""
        deadline = time.monotonic() + timeout
        while sum(self.acked.values()) < sum(self.sent.values()):
            if time.monotonic() > deadline:
                acked, sent = sum(self.acked.values()), sum(self.sent.values())
                raise TimeoutError(f"{acked} of {sent} PUBACKs")
            self.drive(0.01)
        return self.acked_at

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
        self.drive(0.01 * len(self.clients))
