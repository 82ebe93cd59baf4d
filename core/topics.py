"""Every MQTT topic of the park (SPEC sections 3, 3.1, 6 and 7), built and split here.

The broker's ACL, ingest's subscriptions, the simulator's gateways and the services
that publish must agree on each topic to the character; when each built its own
f-string, a change in one place silently broke the others. So every topic and topic
filter comes from a function of this module: pass `ANY` ("+") for a level to get the
subscription filter, or the broker's `%u` for an ACL pattern.

Canonical topics live under the configured prefix (`parks` by default):

    {prefix}/{site}/meters/{meter}                 one reading   (a gateway publishes)
    {prefix}/{site}/gateways/{gateway}             a batch       (a gateway publishes)
    {prefix}/{site}/gateways/{gateway}/committed   its position  (ingest, retained)
    {prefix}/{site}/gateways/{gateway}/status      its last will (not ingested)
    {prefix}/{site}/emissions/live                 live CO2e rate (engine, retained)
    {prefix}/{site}/alerts/{rule}                  alert changes (alerts, retained)

Device protocols publish on their vendor's own topics, which carry no prefix or site.
"""

from __future__ import annotations

from typing import Final

ANY: Final = "+"  # one level, any value
ALL: Final = "#"  # this level and every one below
ACL_USER: Final = "%u"  # Mosquitto's ACL pattern for the connected user's name

METERS: Final = "meters"
GATEWAYS: Final = "gateways"


def reading(prefix: str, site: str, meter: str) -> str:
    """A single reading of one meter."""
    return f"{prefix}/{site}/{METERS}/{meter}"


def batch(prefix: str, site: str, gateway: str) -> str:
    """A gateway's batch of readings."""
    return f"{prefix}/{site}/{GATEWAYS}/{gateway}"


def committed(prefix: str, site: str, gateway: str) -> str:
    """Where ingest tells a gateway up to which message it may forget (retained)."""
    return committed_of(batch(prefix, site, gateway))


def committed_of(batch_topic: str) -> str:
    """The committed-position topic that answers the batches on `batch_topic`."""
    return f"{batch_topic}/committed"


def status(prefix: str, site: str, gateway: str) -> str:
    """A gateway's own status (e.g. its MQTT last will); never ingested."""
    return f"{batch(prefix, site, gateway)}/status"


def live(prefix: str, site: str) -> str:
    """The site's live CO2e rate (retained)."""
    return f"{prefix}/{site}/emissions/live"


def alert(prefix: str, site: str, rule: str) -> str:
    """Changes of one alert rule of a site (retained); `ALL` for every rule."""
    return f"{prefix}/{site}/alerts/{rule}"


def data_filters(prefix: str, sites: list[str] | None = None) -> list[str]:
    """Both canonical data topic forms for these sites, or for every site."""
    return [build(prefix, site, ANY) for site in (sites or [ANY]) for build in (reading, batch)]


def split_data(topic: str, prefix: str) -> tuple[str, str, str] | None:
    """'parks/NCK/meters/M1' -> ('NCK', 'meters', 'M1'); None if not a data topic."""
    parts = topic.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head or len(parts) != len(head) + 3:
        return None
    site, kind, ident = parts[len(head) :]
    if kind not in (METERS, GATEWAYS) or not site or not ident:
        return None
    return site, kind, ident


# What ingest reads besides the canonical topics: each protocol's native uplinks
# (SPEC section 3.1); the gateways' ACL decides who may publish which of them.
DEVICE_FILTERS: Final = (
    "application/+/device/+/event/up",
    "+/events/rpc",
    "tele/+/SENSOR",
    "/neuron/+/+/+",
)


def native(protocol: str, gateway: str, device: str, application: str | None = None) -> str:
    """Where a device's readings arrive, as the vendor names it by default. Plain
    strings (a park's `Protocol` is a `StrEnum`): the park models build on this
    module, not the other way round."""
    if protocol == "chirpstack_v4":
        return f"application/{application}/device/{device.lower()}/event/up"
    if protocol == "shelly_gen2":
        return f"{device}/events/rpc"
    if protocol == "tasmota":
        return f"tele/{device}/SENSOR"
    if protocol == "neuron":
        return f"/neuron/{gateway}/{device}"
    raise ValueError(f"protocol {protocol} has no device topics")


def availability(protocol: str, device: str) -> str | None:
    """A per-device client's last-will topic, which it may publish but ingest ignores."""
    if protocol == "shelly_gen2":
        return f"{device}/online"
    if protocol == "tasmota":
        return f"tele/{device}/LWT"
    return None
