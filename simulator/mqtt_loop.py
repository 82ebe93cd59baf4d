"""One thread, one selector, every gateway's paho client (see simulator/publisher.py).

paho's external-loop contract: the loop calls `loop_read` when a socket is
readable, `loop_write` when paho asked to write (`on_socket_register_write`),
`loop_misc` about once a second for keep-alives, and `reconnect` itself, since
only paho's own loop reconnects. All paho and SQLite calls happen on this thread.
"""

from __future__ import annotations

import contextlib
import json
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core import topics
from core.logs import get_logger
from simulator.buffer import Buffer

log = get_logger("simulator")

MAX_BACKOFF_S = 10.0
CONNACK_WAIT_S = 30.0


@dataclass
class _Gateway:
    name: str
    client: mqtt.Client
    connected: bool = False
    refused: str | None = None
    acked_once: bool = False  # CONNACK seen (or refused) since start
    retry_at: float = 0.0
    backoff: float = 1.0
    next_send: int = 1
    resend_at: float = 0.0  # republish then, unless `committed` moved meanwhile
    resend_s: float = 0.0
    moved: bool = False
    inflight: set[int] = field(default_factory=set)  # mids of sequenced batches
    once: set[int] = field(default_factory=set)  # mids of unsequenced messages


class GatewayLoop:
    def __init__(
        self,
        host: str,
        port: int,
        passwords: dict[str, str],
        open_buffer: Callable[[], Buffer],
        inbox: queue.Queue[tuple[str, str, bytes, bool]],
        *,
        window: int,
        resend_s: float = 30.0,
    ) -> None:
        self.host, self.port, self.passwords = host, port, passwords
        self._open_buffer = open_buffer
        self._inbox = inbox
        self.window = window
        self.resend_s = resend_s
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._gateways: dict[str, _Gateway] = {}
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="gateways", daemon=True)
        self.changed = threading.Event()
        self.error: str | None = None
        self.handled = 0
        self.settled_at_handled = -1
        self.unconfirmed = 0
        self.reconnects = 0
        self.progress_at = time.monotonic()
        self._topics: dict[str, str] = {}

    # --- other threads -----------------------------------------------------------
    def start(self, timeout_s: float) -> str | None:
        self._connect_timeout = timeout_s
        self._thread.start()
        self._started.wait()
        return self.error

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe is awake already
            self._wake_w.send(b"\0")

    def settled(self, submitted: int) -> bool:
        return self.settled_at_handled == submitted

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        if self._thread.is_alive():
            self._thread.join(30)

    # --- the loop thread ---------------------------------------------------------
    def _main(self) -> None:
        try:
            self._buffer = self._open_buffer()
            self._topics = self._buffer.topics()
            self.unconfirmed = self._buffer.unconfirmed()
            self._selector.register(self._wake_r, selectors.EVENT_READ, None)
            if self._connect_all():
                self._run()
        except Exception as exc:  # the runner's thread reports it as a SimulatorError
            self.error = f"gateway loop failed: {exc!r}"
            log.exception("gateway_loop_failed")
        finally:
            self._started.set()
            self.changed.set()
            for gw in self._gateways.values():
                gw.connected = False  # a disconnect of our own, not worth a warning
                gw.client.disconnect()
                gw.client.loop_write()
            if hasattr(self, "_buffer"):
                self._buffer.close()

    def _connect_all(self) -> bool:
        for name in sorted(self.passwords):
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=name, clean_session=False,
                protocol=mqtt.MQTTv311, userdata=name,
            )  # fmt: skip
            client.username_pw_set(name, self.passwords[name])
            client.max_inflight_messages_set(self.window)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_publish = self._on_publish
            client.on_message = self._on_message
            client.on_socket_open = self._on_socket_open
            client.on_socket_close = self._on_socket_close
            client.on_socket_register_write = self._on_register_write
            client.on_socket_unregister_write = self._on_unregister_write
            self._gateways[name] = _Gateway(name, client)
            try:
                client.connect(self.host, self.port, keepalive=30)
            except OSError as exc:
                self.error = f"cannot reach the broker at {self.host}:{self.port}: {exc}"
                return False
        deadline = time.monotonic() + self._connect_timeout
        while not all(g.acked_once for g in self._gateways.values()):
            if time.monotonic() > deadline:
                late = sorted(g.name for g in self._gateways.values() if not g.acked_once)
                self.error = f"broker sent no CONNACK to {len(late)} gateways, e.g. {late[0]!r}"
                break
            self._poll(0.05)
        refused = sorted((g.name, g.refused) for g in self._gateways.values() if g.refused)
        if refused and self.error is None:
            self.error = f"broker refused gateway {refused[0][0]!r}: {refused[0][1]}"
        self._started.set()
        return self.error is None

    def _run(self) -> None:
        misc_at = time.monotonic()
        while not self._stop.is_set():
            self._take_inbox()
            self._poll(0.05)
            now = time.monotonic()
            if now - misc_at >= 1.0:
                misc_at = now
                for gw in self._gateways.values():
                    if gw.connected:
                        gw.client.loop_misc()
                        if now >= gw.resend_at:
                            self._resend_if_stuck(gw, now)
                    elif now >= gw.retry_at:
                        self._reconnect(gw, now)
            self._settle()

    def _poll(self, timeout: float) -> None:
        for key, events in self._selector.select(timeout):
            gw = key.data
            if gw is None:
                while True:
                    try:
                        if not self._wake_r.recv(4096):
                            break
                    except BlockingIOError:
                        break
                continue
            assert isinstance(gw, _Gateway)
            if events & selectors.EVENT_READ:
                gw.client.loop_read()
            if events & selectors.EVENT_WRITE and gw.client.socket() is not None:
                gw.client.loop_write()

    def _take_inbox(self) -> None:
        fresh: dict[str, list[tuple[int, str, bytes]]] = {}
        once: list[tuple[str, str, bytes]] = []
        for _ in range(5000):
            try:
                name, topic, payload, sequenced = self._inbox.get_nowait()
            except queue.Empty:
                break
            self.handled += 1
            if sequenced:
                seq, stamped = self._buffer.add(name, topic, payload)
                self.unconfirmed += 1
                if self._topics.get(name) != topic:
                    self._topics[name] = topic
                    self._subscribe(self._gateways[name])
                fresh.setdefault(name, []).append((seq, topic, stamped))
            else:
                once.append((name, topic, payload))
        if fresh:
            self._buffer.commit()  # durable before the broker sees any of it
        for name, topic, payload in once:
            gw = self._gateways[name]
            gw.once.add(gw.client.publish(topic, payload, qos=1).mid)
        for name, batches in fresh.items():
            gw = self._gateways[name]
            # The common case: nothing older waits, so send from memory, no read back.
            for seq, topic, payload in batches:
                if not gw.connected or gw.next_send != seq or len(gw.inflight) >= self.window:
                    break
                gw.inflight.add(gw.client.publish(topic, payload, qos=1).mid)
                gw.next_send = seq + 1

    def _pump(self, gw: _Gateway) -> None:
        """Hand paho what the window allows, oldest first, read back from the buffer
        (a backlog or a republish): in refills of a quarter window or more, so a
        stream of PUBACKs does not become a stream of queries."""
        room = self.window - len(gw.inflight)
        if not gw.connected or (room < max(1, self.window // 4) and gw.inflight):
            return
        if gw.next_send > self._buffer.last_seq(gw.name):
            return
        for seq, topic, payload in self._buffer.waiting(gw.name, gw.next_send, room):
            gw.inflight.add(gw.client.publish(topic, payload, qos=1).mid)
            gw.next_send = seq + 1
        if gw.next_send <= self._buffer.last_seq(gw.name) and len(gw.inflight) < self.window:
            gw.next_send = self._buffer.last_seq(gw.name) + 1  # pruned meanwhile

    def _resend_if_stuck(self, gw: _Gateway, now: float) -> None:
        """The position did not move for `resend_s` although batches wait: the service
        may have missed them (its subscription lost in the same crash, say), so
        republish, backing off while it stays stuck."""
        waiting = self._buffer.first_seq(gw.name) <= self._buffer.last_seq(gw.name)
        if gw.moved or not waiting:
            gw.resend_s = self.resend_s
        else:
            gw.next_send = self._buffer.first_seq(gw.name)
            self._pump(gw)
            gw.resend_s = min(gw.resend_s * 2, 600.0)
        gw.moved = False
        gw.resend_at = now + gw.resend_s

    def _settle(self) -> None:
        idle = self._inbox.empty() and all(
            g.connected
            and not g.inflight
            and not g.once
            and g.next_send > self._buffer.last_seq(g.name)
            for g in self._gateways.values()
        )
        handled = self.handled if idle else -1
        if handled != self.settled_at_handled:
            self.settled_at_handled = handled
            self.changed.set()

    def _subscribe(self, gw: _Gateway) -> None:
        topic = self._topics.get(gw.name)
        if gw.connected and topic is not None:
            gw.client.subscribe(topics.committed_of(topic), qos=1)

    def _reconnect(self, gw: _Gateway, now: float) -> None:
        # Leave the CONNACK time to come: a broker just restarted answers a thousand
        # logins slowly, and retrying early would restart them all over again.
        gw.retry_at = now + CONNACK_WAIT_S
        try:
            gw.client.reconnect()
        except OSError as exc:
            gw.retry_at = now + gw.backoff
            gw.backoff = min(gw.backoff * 2, MAX_BACKOFF_S)
            log.debug("gateway_reconnect_failed", gateway=gw.name, error=str(exc))

    # --- paho callbacks (on this thread) ----------------------------------------
    def _gw(self, userdata: object) -> _Gateway:
        assert isinstance(userdata, str)
        return self._gateways[userdata]

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        gw = self._gw(u)
        gw.acked_once = True
        if getattr(rc, "is_failure", False):
            gw.refused = str(rc)
            return
        if gw.retry_at:
            self.reconnects += 1
            log.debug("gateway_reconnected", gateway=gw.name)
        gw.connected, gw.backoff, gw.refused = True, 1.0, None
        gw.inflight.clear()
        gw.next_send = self._buffer.first_seq(gw.name)  # republish what is not covered
        gw.resend_s = self.resend_s
        gw.resend_at = time.monotonic() + gw.resend_s
        self._subscribe(gw)
        self._pump(gw)
        self.progress_at = time.monotonic()

    def _on_disconnect(self, c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        gw = self._gw(u)
        if gw.connected:
            log.warning("gateway_disconnected", gateway=gw.name, reason=str(rc))
        gw.connected = False
        gw.inflight.clear()
        gw.once.clear()  # paho resends these itself on reconnect (persistent session)
        gw.retry_at = time.monotonic() + gw.backoff
        gw.backoff = min(gw.backoff * 2, MAX_BACKOFF_S)

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        gw = self._gw(u)
        gw.inflight.discard(mid)
        gw.once.discard(mid)
        self.progress_at = time.monotonic()
        self._pump(gw)

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        gw = self._gw(u)
        try:
            doc = json.loads(msg.payload)
            epoch, seq = str(doc["epoch"]), int(doc["seq"])
        except (ValueError, KeyError, TypeError):
            log.warning("committed_unreadable", gateway=gw.name, payload=msg.payload[:100])
            return
        pruned = self._buffer.prune(gw.name, epoch, seq)
        if pruned:
            gw.moved = True
            self.unconfirmed -= pruned
            self.progress_at = time.monotonic()
            self.changed.set()

    def _on_socket_open(self, c: mqtt.Client, u: object, sock: object) -> None:
        self._selector.register(sock, selectors.EVENT_READ, self._gw(u))  # type: ignore[arg-type]

    def _on_socket_close(self, c: mqtt.Client, u: object, sock: object) -> None:
        with contextlib.suppress(KeyError):  # never registered: the connect failed
            self._selector.unregister(sock)  # type: ignore[arg-type]

    def _on_register_write(self, c: mqtt.Client, u: object, sock: object) -> None:
        events = selectors.EVENT_READ | selectors.EVENT_WRITE
        self._selector.modify(sock, events, self._gw(u))  # type: ignore[arg-type]

    def _on_unregister_write(self, c: mqtt.Client, u: object, sock: object) -> None:
        self._selector.modify(sock, selectors.EVENT_READ, self._gw(u))  # type: ignore[arg-type]
