"""Running the real ingestor as a process, and publishing like real gateways."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, text

from core import topics
from core.park.devices import Protocol
from core.park.models import Park
from core.settings import Settings
from tests.kit.broker import Broker, free_port
from tests.kit.paths import ROOT

BASE_TS = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class IngestProcess:
    """`emissions ingest` in its own process, as an operator would run it."""

    settings: Settings
    broker: Broker
    user: str = "svc-ingest-1"
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    health_port: int = 0

    def env(self) -> dict[str, str]:
        password = self.settings.db_password
        env = {
            **os.environ,
            "EMISSIONS_DB_NAME": self.settings.db_name,
            "EMISSIONS_DB_PASSWORD": password.get_secret_value() if password else "",
            "EMISSIONS_MQTT_PORT": str(self.broker.port),
            "EMISSIONS_MQTT_USERNAME": self.user,
            "EMISSIONS_MQTT_PASSWORD": self.broker.password(self.user),
            "EMISSIONS_INGEST_HEALTH_PORT": str(self.health_port),
            "EMISSIONS_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        return env

    def start(self) -> None:
        self.health_port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "ingest"], cwd=ROOT, env=self.env()
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ready():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"ingest exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise TimeoutError("ingest did not become ready")

    def healthy(self) -> bool:
        return self._ok("/healthz")

    def ready(self) -> bool:
        """The broker granted every subscription: what is published now reaches us."""
        return self._ok("/readyz")

    def _ok(self, path: str) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}{path}"
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def messages_done(self) -> float:
        """Messages the ingestor committed or quarantined (and acked) so far."""
        for line in self.metrics().splitlines():
            if line.startswith("emissions_ingest_messages_total "):
                return float(line.split()[1])
        return 0.0

    def wait_for_messages(self, expected: float, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.messages_done() < expected:
            assert time.monotonic() < deadline, f"ingest stuck at {self.messages_done()}"
            time.sleep(0.05)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def forget_session(broker: Broker, user: str) -> None:
    """Connect once with a clean session: the broker drops whatever it queued for
    `user` while that user was offline (for example other tests' messages)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=user, clean_session=True, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(user, broker.password(user))
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    # The CONNACK of a clean session: the broker has dropped the old one by now.
    assert connected.wait(10), "no CONNACK"
    client.disconnect()
    client.loop_stop()


def gateway(park: Park, site_id: str = "NCK", index: int = 0) -> tuple[str, list[str]]:
    """The `index`-th gateway of the site that may publish the canonical JSON (a
    ChirpStack or Neuron gateway publishes only its devices' native topics)."""
    site = next(s for s in park.sites if s.id == site_id)
    native_only = (Protocol.chirpstack_v4, Protocol.neuron)
    ent = [e for e in site.enterprises if e.meters and e.protocol not in native_only][index]
    return ent.gateway_id, [m.id for m in ent.meters]


def batch_messages(
    site: str, gw: str, meters: list[str], n: int, per_message: int, start: int = 0
) -> list[tuple[str, bytes]]:
    """n readings, distinct (meter, ts), in gateway batches."""
    out = []
    for first in range(start, start + n, per_message):
        items = [
            {
                "meter": meters[i % len(meters)],
                "ts": int((BASE_TS + timedelta(seconds=i // len(meters))).timestamp()),
                "value": float(i),
            }
            for i in range(first, min(first + per_message, start + n))
        ]
        out.append((topics.batch("parks", site, gw), json.dumps({"readings": items}).encode()))
    return out


def single_messages(
    site: str, meters: list[str], n: int, start: int = 0
) -> Iterator[tuple[str, bytes]]:
    for i in range(start, start + n):
        ts = (BASE_TS + timedelta(seconds=i // len(meters))).isoformat()
        yield (
            topics.reading("parks", site, meters[i % len(meters)]),
            json.dumps({"ts": ts, "value": float(i)}).encode(),
        )


def publish_all(
    broker: Broker, user: str, messages: list[tuple[str, bytes]], timeout: float = 120
) -> None:
    """Publish at QoS 1 and wait until the broker has acknowledged every message,
    reconnecting (and resending what was in flight) if the broker restarts."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=user,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    client.username_pw_set(user, broker.password(user))
    client.max_inflight_messages_set(500)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(1, 2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    deadline = time.monotonic() + timeout
    try:
        # paho's packet ids wrap at 65,535: keep fewer than that outstanding.
        for start in range(0, len(messages), 20_000):
            infos = [
                client.publish(topic, payload, qos=1)
                for topic, payload in messages[start : start + 20_000]
            ]
            for info in infos:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
                assert info.is_published(), "broker did not acknowledge a publish in time"
    finally:
        client.disconnect()
        client.loop_stop()


def count(engine: Engine, table: str = "readings") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def wait_for_count(
    engine: Engine, expected: int, table: str = "readings", timeout: float = 60
) -> int:
    """Poll until the table holds `expected` rows (or time runs out); returns the count."""
    deadline = time.monotonic() + timeout
    current = count(engine, table)
    while current < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        current = count(engine, table)
    return current


def settle(engine: Engine, table: str = "readings", quiet_s: float = 2.0) -> int:
    """Wait until the count stops changing: proves nothing more (e.g. duplicates) arrives."""
    last = count(engine, table)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet_s:
        time.sleep(0.25)
        now = count(engine, table)
        if now != last:
            last, stable_since = now, time.monotonic()
    return last
