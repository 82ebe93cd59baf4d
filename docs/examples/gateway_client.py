"""A minimal gateway with end-to-end delivery (docs/ingest.md, SPEC section 3).

It numbers its batches (`epoch`, `seq`), keeps each one in SQLite until the
service's retained `committed` position covers it, and republishes whatever is
left after every (re)connect, and again whenever the position has not moved for
`resend_s` (doubling up to 10 minutes while it stays stuck: the service may have
missed a republish, e.g. its subscription was lost in the same broker crash).
Storage is idempotent, so republishing is safe.

    client = GatewayClient("127.0.0.1", 11883, "NCK", "NCK-STL1-GW", password, "buf.sqlite")
    client.send([{"meter": "NCK-STL1-E-01", "ts": 1767571200, "value": 1532.25}])
    client.wait_all_committed(timeout=60)
    client.close()
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class GatewayClient:
    def __init__(
        self, host: str, port: int, site: str, gateway: str, password: str, buffer: str,
        prefix: str = "parks", resend_s: float = 30.0,
    ) -> None:  # fmt: skip
        self.topic = f"{prefix}/{site}/gateways/{gateway}"
        self._lock = threading.Condition()
        self._db = sqlite3.connect(buffer, check_same_thread=False, isolation_level=None)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS counter (epoch TEXT NOT NULL, seq INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);"
        )
        row = self._db.execute("SELECT epoch, seq FROM counter").fetchone()
        if row is None:  # a new buffer is a new counter: a new epoch
            row = (uuid.uuid4().hex[:16], 0)
            self._db.execute("INSERT INTO counter VALUES (?, ?)", row)
        self.epoch, self._seq = str(row[0]), int(row[1])
        self._moved = False  # the committed position moved since the last look
        # The broker forces client id = user name; a persistent session keeps our
        # subscription and in-flight messages across reconnects.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=gateway, clean_session=False
        )
        self._client.username_pw_set(gateway, password)
        self._client.reconnect_delay_set(1, 10)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_committed
        self._resend_s = self._first_resend_s = resend_s
        self._closed = threading.Event()
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()
        threading.Thread(target=self._resend_when_stuck, daemon=True).start()

    def send(self, readings: list[dict[str, Any]]) -> int:
        """Number, keep, then publish one batch; returns its seq."""
        with self._lock:
            self._seq += 1
            doc = {"epoch": self.epoch, "seq": self._seq, "readings": readings}
            payload = json.dumps(doc, separators=(",", ":")).encode()
            self._db.execute("BEGIN")  # the counter and the batch, durable together
            self._db.execute("INSERT INTO outbox VALUES (?, ?)", (self._seq, payload))
            self._db.execute("UPDATE counter SET seq = ?", (self._seq,))
            self._db.execute("COMMIT")
            self._client.publish(self.topic, payload, qos=1)
            return self._seq

    def waiting(self) -> int:
        """Batches not yet covered by the service's committed position."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def wait_all_committed(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.waiting() == 0, timeout)

    def close(self) -> None:
        self._closed.set()
        self._client.disconnect()
        self._client.loop_stop()
        self._db.close()

    def _on_connect(self, client: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            return  # wrong password or not allowed: paho keeps retrying, fix the config
        client.subscribe(f"{self.topic}/committed", qos=1)
        self._republish()

    def _republish(self) -> None:
        with self._lock:  # what the service has not confirmed, oldest first
            for (payload,) in self._db.execute("SELECT payload FROM outbox ORDER BY seq"):
                self._client.publish(self.topic, payload, qos=1)

    def _resend_when_stuck(self) -> None:
        while not self._closed.wait(self._resend_s):
            with self._lock:
                moved, self._moved = self._moved, False
            if moved or not self.waiting():
                self._resend_s = self._first_resend_s
            else:
                self._republish()
                self._resend_s = min(self._resend_s * 2, 600.0)

    def _on_committed(self, client: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        position = json.loads(msg.payload)
        if position.get("epoch") != self.epoch:
            return  # a position of an earlier counter covers nothing of ours
        with self._lock:
            deleted = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (int(position["seq"]),))
            self._moved = self._moved or deleted.rowcount > 0
            self._lock.notify_all()
