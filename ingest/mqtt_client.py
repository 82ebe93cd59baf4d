"""The MQTT edge of ingest: a persistent QoS 1 session with manual acknowledgement.

Fixed client id (the broker forces it to the user name), `clean_session=False`
(3.1.1) or `clean_start=False` with a session expiry (5), so the broker keeps
what we have not acknowledged across restarts. Acks are tied to the connection
they came from: after a reconnect the broker redelivers, and acking an old
packet id on the new connection could acknowledge the wrong message.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.broker.login import login
from core.logs import get_logger
from core.settings import Settings
from core.topics import DEVICE_FILTERS, data_filters

log = get_logger("ingest.mqtt")

SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(slots=True)
class AckToken:
    """Not frozen: one is made per message on the MQTT thread (ingest/parse.py, Reading)."""

    mid: int
    qos: int
    generation: int


def topic_filters(prefix: str, sites: list[str], device_topics: Sequence[str] = ()) -> list[str]:
    """Both data topic forms, for every site or for this process's partition, and the
    device protocols' native topics (SPEC 3.1): all of them (an unmapped device is
    quarantined `unknown_device`), or a partition's own devices' topics, which carry
    no site to filter on."""
    return data_filters(prefix, sites) + (list(device_topics) if sites else list(DEVICE_FILTERS))


def pubacks(mids: list[int]) -> bytes:
    """PUBACK packets back to back, each its fixed header (type, remaining length 2)
    and packet id, built with slice assignments rather than a `pack` per message."""
    n = len(mids)
    ids = struct.pack(f"!{n}H", *mids)
    out = bytearray(4 * n)
    out[0::4] = bytes([mqtt.PUBACK]) * n
    out[1::4] = b"\x02" * n
    out[2::4] = ids[0::2]
    out[3::4] = ids[1::2]
    return bytes(out)


class IngestClient:
    def __init__(
        self,
        settings: Settings,
        on_message: Callable[[str, bytes, AckToken], None],
        device_topics: Callable[[], list[str]] = list,
    ):
        self._settings = settings
        self._device_topics = device_topics
        self._on_message = on_message
        self._generation = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        # Set once the broker granted every subscription of the current connection:
        # before that, a message published now might reach no session of ours.
        self.subscribed = threading.Event()
        self._pending_sub: int | None = None
        v5 = settings.mqtt_protocol == "5"
        self._v5 = v5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.mqtt_username,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        self.client.username_pw_set(settings.mqtt_username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_subscribe = self._subscribed

    def start(self) -> None:
        kwargs: dict[str, object] = {}
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self._settings.ingest_max_inflight
            kwargs = {"clean_start": False, "properties": props}
        login(
            self.client,
            self._settings.mqtt_host,
            self._settings.mqtt_port,
            self._settings.mqtt_username,
            timeout_s=self._settings.startup_wait_s,
            keepalive=self._settings.mqtt_keepalive_s,
            **kwargs,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """QoS 1 and retained: a gateway that reconnects later still reads it. paho
        queues it while disconnected and sends it on reconnect."""
        self.client.publish(topic, payload, qos=1, retain=True)

    def ack(self, tokens: Sequence[object]) -> None:
        """Acknowledge a committed batch, except what came on a connection now gone.

        Measured (bench.ingest, py-spy): paho's `ack` queues one PUBACK per call and
        wakes its network thread through a socket pair each time, so a batch of 5,000
        cost 5,000 wake-ups and 5,000 four-byte sends, a quarter of the writer thread's
        time. The PUBACKs of a batch go out as one buffer instead (MQTT lets control
        packets share a TCP write), queued through paho's own packet queue; without
        it (another paho), one `ack` per message as before.
        """
        with self._lock:
            if not self.connected.is_set():
                return
            mids = [
                t.mid
                for t in tokens
                if isinstance(t, AckToken) and t.qos == 1 and t.generation == self._generation
            ]
            if not mids:
                return
            queue = getattr(self.client, "_packet_queue", None)
            if queue is None:
                for mid in mids:
                    self.client.ack(mid, 1)
                return
            queue(mqtt.PUBACK, pubacks(mids), 0, 0)

    def _connected(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("mqtt_connect_refused", reason=str(reason))
            return
        filters = topic_filters(
            self._settings.mqtt_topic_prefix, self._settings.ingest_sites, self._device_topics()
        )
        _, self._pending_sub = client.subscribe([(f, 1) for f in filters])
        self.connected.set()
        log.info(
            "mqtt_connected",
            client_id=self._settings.mqtt_username,
            session_present=flags.session_present,
            filters=filters,
        )

    def _disconnected(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        with self._lock:
            self._generation += 1
            self.connected.clear()
            self.subscribed.clear()
        log.warning("mqtt_disconnected", reason=str(reason))

    def _subscribed(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if mid != self._pending_sub:
            return
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            # The ACL does not let this user read its topics: an operator's mistake
            # that readiness must show, not a state to retry into.
            log.error("mqtt_subscription_refused", reasons=refused)
            return
        self.subscribed.set()
        log.info("mqtt_subscribed", filters=len(reasons))

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._on_message(
            msg.topic, bytes(msg.payload), AckToken(msg.mid, msg.qos, self._generation)
        )
