"""The gateways' MQTT side: thousands of persistent clients on one event loop.

Each gateway logs in with its own broker user (the gateway id) and password, as
the ACL expects, with a persistent QoS 1 session. No thread per gateway: one loop
thread drives every paho client over a selector (paho's external-loop API:
loop_read, loop_write, loop_misc and the socket callbacks), and owns the
store-and-forward buffer (simulator/buffer.py). Batches are numbered and kept on
disk until the retained `committed` position covers them, republished after every
reconnect and when the position is stuck for `resend_s` (doubling), and at most
`window` are unacknowledged per gateway (paho's packet ids wrap at 65,535, and a
long queue inside paho makes every PUBACK slower). A broker that goes away is
waited for: publishing keeps buffering, clients reconnect.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from core.logs import get_logger
from core.paths import mqtt_password_file
from simulator.buffer import Buffer
from simulator.mqtt_loop import GatewayLoop

log = get_logger("simulator")


class SimulatorError(RuntimeError):
    """A problem the operator must fix (missing password, broker unreachable)."""


class Sink(Protocol):
    def publish(self, gateway: str, topic: str, payload: bytes, sequenced: bool = True) -> None:
        """`sequenced`: a canonical JSON batch that takes part in end-to-end delivery;
        anything else (a garbled message, another protocol's payload) is sent once."""

    def drain(self) -> None: ...
    def close(self) -> None: ...


class NullSink:
    """Publishes nothing: `--dry-run` (the ledger alone)."""

    def publish(self, gateway: str, topic: str, payload: bytes, sequenced: bool = True) -> None:
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
    """The runner's thread calls publish/drain; everything MQTT and SQLite happens on
    the loop thread, fed through a bounded queue (back-pressure on the runner)."""

    def __init__(
        self,
        host: str,
        port: int,
        passwords: dict[str, str],
        *,
        buffer_path: Path,
        window: int = 100,
        timeout_s: float = 60.0,
        resend_s: float = 30.0,
    ) -> None:
        self.timeout_s = timeout_s
        self._inbox: queue.Queue[tuple[str, str, bytes, bool]] = queue.Queue(maxsize=20_000)
        self._loop = GatewayLoop(
            host,
            port,
            passwords,
            lambda: Buffer(buffer_path),
            self._inbox,
            window=window,
            resend_s=resend_s,
        )
        self._submitted = 0

    def connect(self) -> None:
        """Log every gateway in now, so a wrong password or port fails before any work."""
        error = self._loop.start(timeout_s=max(10.0, len(self._loop.passwords) / 50))
        if error is not None:
            self._loop.stop()
            raise SimulatorError(error)
        log.info("gateways_connected", gateways=len(self._loop.passwords))

    def publish(self, gateway: str, topic: str, payload: bytes, sequenced: bool = True) -> None:
        self._check()
        self._submitted += 1
        while True:
            try:
                self._inbox.put((gateway, topic, payload, sequenced), timeout=1.0)
                break
            except queue.Full:
                self._check()
        self._loop.wake()

    def drain(self) -> None:
        """Until the broker acknowledged everything published so far. Waits through a
        broker outage; fails only when nothing moved for `timeout_s`."""
        self._wait(lambda: self._loop.settled(self._submitted), "acknowledged nothing")

    def wait_committed(self, timeout_s: float | None = None) -> None:
        """Until the service's `committed` positions cover everything buffered."""
        self._wait(
            lambda: self._loop.settled(self._submitted) and self._loop.unconfirmed == 0,
            "committed nothing",
            timeout_s,
        )

    @property
    def unconfirmed(self) -> int:
        """Batches in the buffer that no `committed` position covers yet."""
        return self._loop.unconfirmed

    @property
    def reconnects(self) -> int:
        return self._loop.reconnects

    def _wait(self, done: object, what: str, timeout_s: float | None = None) -> None:
        assert callable(done)
        limit = self.timeout_s if timeout_s is None else timeout_s
        while not done():
            self._check()
            if time.monotonic() - self._loop.progress_at > limit:
                raise SimulatorError(f"the broker or the service {what} for {limit:.0f} s")
            self._loop.changed.wait(0.2)
            self._loop.changed.clear()

    def _check(self) -> None:
        if self._loop.error is not None:
            raise SimulatorError(self._loop.error)

    def close(self) -> None:
        self._loop.stop()
