"""Vendor payloads to canonical reading items, one module per protocol (SPEC 3.1)."""

from __future__ import annotations

from ingest.adapters import chirpstack_v4, neuron, shelly_gen2, tasmota
from ingest.adapters.base import Adapter

ADAPTERS: dict[str, Adapter] = {
    "chirpstack_v4": chirpstack_v4.adapt,
    "shelly_gen2": shelly_gen2.adapt,
    "tasmota": tasmota.adapt,
    "neuron": neuron.adapt,
}
