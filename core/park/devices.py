"""Device payloads in the park file (SPEC section 3.1): a gateway's protocol and the
mapping from its devices' fields to meters.

Each device's native MQTT topic is derived in `core.topics` (`native`), once, because
three parts must agree on it: the broker's ACL (only this gateway may publish it),
ingest's routing (which meters a message on it feeds) and the simulator (where a
device publishes).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from core.units import KNOWN_UNITS


class Protocol(StrEnum):
    canonical = "canonical"
    chirpstack_v4 = "chirpstack_v4"
    shelly_gen2 = "shelly_gen2"
    tasmota = "tasmota"
    neuron = "neuron"


# Protocols whose devices each hold their own MQTT connection (one broker user per
# device); the others publish through one client (ChirpStack's MQTT integration,
# Neuron's MQTT north app), the gateway user.
PER_DEVICE_CLIENT = frozenset({Protocol.shelly_gen2, Protocol.tasmota})

# One topic level without MQTT wildcards or separators.
_LEVEL = r"[A-Za-z0-9_.:-]{1,64}"
_DEV_EUI = re.compile(r"^[0-9a-fA-F]{16}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SHELLY_FIELD = re.compile(r"^(emdata|em1data):\d{1,2}\.[a-z_]{1,40}$")
_TASMOTA_FIELD = re.compile(r"^ENERGY\.[A-Za-z]{1,40}(\.\d{1,2})?$")
_LEVEL_RE = re.compile(rf"^{_LEVEL}$")


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known IANA time zone") from None
    return value


# An IANA time zone name (a site's, a Tasmota device's); the park models use it too.
TimeZoneName = Annotated[str, AfterValidator(_timezone)]


class Device(BaseModel):
    """One field of one device feeding one meter.

    `device` is the device's own address in its protocol: the LoRaWAN DevEUI
    (chirpstack_v4), the MQTT topic prefix (shelly_gen2), the Tasmota topic
    (tasmota), or `node/group` (neuron). `field` names the value inside the payload.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    device: Annotated[str, Field(min_length=1, max_length=129)]
    field: Annotated[str, Field(min_length=1, max_length=128)]
    meter: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    # Unit of the value as the device sends it (ChirpStack codecs and Neuron tags have
    # none of their own); Shelly totals are Wh and Tasmota's ENERGY totals kWh.
    unit: str | None = None
    application: str | None = None  # ChirpStack application id (UUID)
    timezone: TimeZoneName | None = None  # Tasmota `Time`


def device_issue(protocol: Protocol, device: Device) -> str | None:
    """What is wrong with a mapping entry for this protocol, or None."""
    if protocol is Protocol.canonical:
        return "a canonical gateway names its meters in its payloads; remove `devices`"
    if protocol is Protocol.chirpstack_v4:
        if not _DEV_EUI.match(device.device):
            return f"device {device.device!r} is not a DevEUI (16 hex digits)"
        if device.application is None or not _UUID.match(device.application):
            return "application must be the ChirpStack application id (a UUID)"
        if device.unit is None:
            return "unit is required: a codec's decoded object states none"
    elif protocol is Protocol.neuron:
        node, _, group = device.device.partition("/")
        if not (_LEVEL_RE.match(node) and _LEVEL_RE.match(group)):
            return f"device {device.device!r} must be 'node/group' (the south node and group)"
        if device.unit is None:
            return "unit is required: Neuron tags carry no unit"
    else:
        if not _LEVEL_RE.match(device.device):
            return f"device {device.device!r} must be one MQTT topic level (no / + # or spaces)"
        pattern = _SHELLY_FIELD if protocol is Protocol.shelly_gen2 else _TASMOTA_FIELD
        if not pattern.match(device.field):
            example = "emdata:0.total_act" if protocol is Protocol.shelly_gen2 else "ENERGY.Total"
            return f"field {device.field!r} is not a {protocol} total (e.g. {example!r})"
        if device.unit is not None:
            return f"unit is fixed by {protocol}; remove it"
    if device.unit is not None and device.unit not in KNOWN_UNITS:
        return f"unit {device.unit!r} is not a known unit (known: {', '.join(KNOWN_UNITS)})"
    if protocol is not Protocol.chirpstack_v4 and device.application is not None:
        return "application applies to chirpstack_v4 only"
    if protocol is not Protocol.tasmota and device.timezone is not None:
        return "timezone applies to tasmota only (its `Time` has no offset)"
    return None


class DeviceGateway(BaseModel):
    """Mixed into the enterprise model: its gateway's protocol and device mapping."""

    protocol: Protocol = Protocol.canonical
    devices: list[Device] = []

    @model_validator(mode="after")
    def _devices_fit_protocol(self) -> DeviceGateway:
        if self.protocol is not Protocol.canonical and not self.devices:
            raise ValueError(f"protocol {self.protocol} needs a `devices` mapping")
        for n, device in enumerate(self.devices):
            issue = device_issue(self.protocol, device)
            if issue is not None:
                raise ValueError(f"devices[{n}]: {issue}")
        return self
