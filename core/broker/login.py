"""The first login of a component's MQTT client: wait while the broker is down, fail
in one line when it refuses the user.

paho's own loop reconnects forever and reports a refused login only in a callback,
so a wrong password would look like a running service that never ingests anything.
The first connection is therefore made here, on the component's own client (a probe
with another client would take over its persistent session), and paho's loop takes
over once it is in.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.failures import ConfigurationFailure, StartupFailure
from core.logs import get_logger

log = get_logger("broker")

# MQTT 3.1.1 CONNACK 4 and 5 and their MQTT 5 reason codes.
_LOGIN_REFUSED = {
    "Bad user name or password",
    "Not authorized",
    "Banned",
    "Client identifier not valid",
}


def _refused_login(reason: str) -> bool:
    return reason in _LOGIN_REFUSED


def login(
    client: mqtt.Client,
    host: str,
    port: int,
    user: str,
    *,
    timeout_s: float = 60.0,
    setting: str = "EMISSIONS_MQTT_PASSWORD",
    **connect_kwargs: Any,
) -> None:
    """Connect `client`, start its network loop and return once the broker accepted it.

    `setting` names where the password came from, for the message on a refusal."""
    where = f"MQTT broker at {host}:{port}, user {user!r}"
    answered = threading.Event()
    reasons: list[str] = []
    callback: Any = client.on_connect

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            reasons.append(str(reason))
        answered.set()
        if callback is not None:
            callback(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            client.connect(host, port, **connect_kwargs)
            break
        except OSError as exc:
            if time.monotonic() + delay > deadline:
                raise StartupFailure(
                    f"{where}: unreachable after {timeout_s:.0f} s ({exc.strerror or exc}); "
                    "is it running? Check EMISSIONS_MQTT_HOST and EMISSIONS_MQTT_PORT"
                ) from None
            log.warning("waiting for the broker", host=host, port=port, error=str(exc))
            time.sleep(delay)  # nothing to wait on: the broker is not listening yet
            delay = min(delay * 2, 5.0)
    client.loop_start()
    if not answered.wait(max(deadline - time.monotonic(), 10.0)):
        client.loop_stop()
        raise StartupFailure(f"{where}: no answer to the login (CONNACK)")
    if reasons and _refused_login(reasons[0]):
        client.loop_stop()
        raise ConfigurationFailure(
            f"{where}: login refused ({reasons[0]}); check EMISSIONS_MQTT_USERNAME and {setting} "
            "(or the state directory's mqtt password file), and that the broker's passwd "
            "was rendered for this user"
        )


def check_login(
    host: str, port: int, user: str, password: str | None, *, timeout_s: float = 60.0
) -> None:
    """Log in once with a clean session and leave: for components whose client
    keeps no session and connects in a worker thread, where a refusal would only
    be a log line."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, clean_session=True)
    client.username_pw_set(user, password)
    login(client, host, port, user, timeout_s=timeout_s)
    client.disconnect()
    client.loop_stop()
