"""Vendor payloads copied from the vendors' documentation, and a park that maps them.

Sources (each fixture names its page):
- ChirpStack v4, "Event types", `up`: https://www.chirpstack.io/docs/chirpstack/integrations/events.html
  (field names also in the v4 integration.proto, UplinkEvent/DeviceInfo:
  https://docs.rs/crate/chirpstack_api/4.2.0-test.1/source/proto/chirpstack/integration/integration.proto)
- Shelly Gen2: the NotifyStatus frame of https://shelly-api-docs.shelly.cloud/gen2/General/Notifications
  carrying the EMData status of https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EMData#status
  and the EM1Data status of https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM1Data#status
- Tasmota `tele/<topic>/SENSOR` with ENERGY, as shown in
  https://blog.mylocalbytes.com/kb/2022-01-10/LB-PM-Power-Monitoring (Tasmota power
  monitoring, https://tasmota.github.io/docs/Power-Monitoring/)
- EMQX Neuron values format: https://docs.emqx.com/en/neuron/v2.5/configuration/north-apps/mqtt/api.html
"""

from __future__ import annotations

import copy
import json
from typing import Any

from core.park.loader import parse_park
from core.park.models import Park

# ChirpStack v4 events page, `up` (the example device has no codec: no `object`).
CHIRPSTACK_UP: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
        "applicationName": "Test application",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
        "deviceProfileName": "Test device-profile",
        "deviceName": "Test device",
        "devEui": "0101010101010101",
        "tags": {"key": "value"},
    },
    "devAddr": "00189440",
    "dr": 1,
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [
        {
            "gatewayId": "0016c001f153a14c",
            "uplinkId": 4217106255,
            "rssi": -36,
            "snr": 10.5,
            "context": "E3OWOQ==",
            "metadata": {"region_name": "eu868", "region_common_name": "EU868"},
        }
    ],
    "txInfo": {
        "frequency": 867100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}},
    },
}
CHIRPSTACK_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
CHIRPSTACK_EUI = "0101010101010101"


def chirpstack_with_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The documented event as it arrives when the device profile has a codec."""
    doc = copy.deepcopy(CHIRPSTACK_UP)
    doc["object"] = obj
    return doc


# Shelly Pro 3EM: NotifyStatus envelope (Notifications page) with the EMData status
# example (EMData page): totals in Wh.
SHELLY_DEVICE = "shellypro3em-c8f09e8e4b0c"
SHELLY_NOTIFY: dict[str, Any] = {
    "src": SHELLY_DEVICE,
    "dst": "user_1",
    "method": "NotifyStatus",
    "params": {
        "ts": 1631186545.04,
        "emdata:0": {
            "id": 0,
            "a_total_act_energy": 2776.06,
            "a_total_act_ret_energy": 0,
            "b_total_act_energy": 2776.06,
            "b_total_act_ret_energy": 0,
            "c_total_act_energy": 2776.06,
            "c_total_act_ret_energy": 0,
            "total_act": 8328.18,
            "total_act_ret": 0,
        },
    },
}
# Shelly Pro EM: the EM1Data status example.
SHELLY_EM1_DEVICE = "shellyproem50-08f9e0e5d6c4"
SHELLY_EM1_NOTIFY: dict[str, Any] = {
    "src": SHELLY_EM1_DEVICE,
    "dst": "user_1",
    "method": "NotifyStatus",
    "params": {
        "ts": 1631186545.04,
        "em1data:0": {"id": 0, "total_act_energy": 2776.06, "total_act_ret_energy": 0},
    },
}

# Tasmota power monitoring, `tele/<topic>/SENSOR`: Total in kWh, Time local, no offset.
TASMOTA_TOPIC = "livingroom-lamp"
TASMOTA_SENSOR: dict[str, Any] = {
    "Time": "2022-01-11T21:57:38",
    "ENERGY": {
        "TotalStartTime": "2020-10-21T22:15:00",
        "Total": 3.705,
        "Yesterday": 0.028,
        "Today": 0.026,
        "Period": 1,
        "Power": 5,
        "ApparentPower": 5,
        "ReactivePower": 0,
        "Factor": 1.00,
        "Voltage": 233,
        "Current": 0.021,
    },
}

# Neuron values format: timestamp in ms, tag values and tag error codes.
NEURON_VALUES: dict[str, Any] = {
    "timestamp": 1650006388943,
    "node": "modbus",
    "group": "grp",
    "values": {"tag0": 123},
    "errors": {"tag1": 2014},
}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _meter(meter_id: str, unit: str) -> dict[str, Any]:
    return {
        "id": meter_id,
        "kind": "electricity",
        "unit": unit,
        "reading": "counter",
        "commissioned_at": "2020-01-01T00:00:00+07:00",
    }


def device_park(base: Park) -> Park:
    """`base` plus a site whose enterprises speak each device protocol, and one
    LoRaWAN device mapped onto another enterprise's meter (for `foreign_meter`)."""
    data = base.model_dump(mode="json")
    data["sites"].append(
        {
            "id": "DEV",
            "name": "Device protocols test site",
            "timezone": "Asia/Ho_Chi_Minh",
            "enterprises": [
                {
                    "id": "DEV-LORA",
                    "name": "LoRaWAN tenant",
                    "industry": "electronics",
                    "gateway": "DEV-CHIRPSTACK",
                    "protocol": "chirpstack_v4",
                    "meters": [_meter("DEV-LORA-M1", "kWh")],
                    "devices": [
                        {
                            "device": CHIRPSTACK_EUI,
                            "application": CHIRPSTACK_APP,
                            "field": "energy",
                            "meter": "DEV-LORA-M1",
                            "unit": "Wh",
                        },
                        {
                            "device": "0202020202020202",
                            "application": CHIRPSTACK_APP,
                            "field": "energy",
                            "meter": "DEV-TAS-M1",
                            "unit": "kWh",
                        },
                    ],
                },
                {
                    "id": "DEV-SHELLY",
                    "name": "Shelly tenant",
                    "industry": "garments",
                    "protocol": "shelly_gen2",
                    "meters": [_meter("DEV-SH-M1", "Wh"), _meter("DEV-SH-M2", "kWh")],
                    "devices": [
                        {
                            "device": SHELLY_DEVICE,
                            "field": "emdata:0.total_act",
                            "meter": "DEV-SH-M1",
                        },
                        {
                            "device": SHELLY_EM1_DEVICE,
                            "field": "em1data:0.total_act_energy",
                            "meter": "DEV-SH-M2",
                        },
                    ],
                },
                {
                    "id": "DEV-TAS",
                    "name": "Tasmota tenant",
                    "industry": "plastics",
                    "protocol": "tasmota",
                    "meters": [_meter("DEV-TAS-M1", "kWh")],
                    "devices": [
                        {
                            "device": TASMOTA_TOPIC,
                            "field": "ENERGY.Total",
                            "meter": "DEV-TAS-M1",
                            "timezone": "Europe/Berlin",
                        }
                    ],
                },
                {
                    "id": "DEV-NEURON",
                    "name": "Modbus tenant",
                    "industry": "food_processing",
                    "gateway": "DEV-NEURON-GW",
                    "protocol": "neuron",
                    "meters": [_meter("DEV-NE-M1", "kWh"), _meter("DEV-NE-M2", "kWh")],
                    "devices": [
                        {
                            "device": "modbus/grp",
                            "field": "tag0",
                            "meter": "DEV-NE-M1",
                            "unit": "kWh",
                        },
                        {
                            "device": "modbus/grp",
                            "field": "tag1",
                            "meter": "DEV-NE-M2",
                            "unit": "kWh",
                        },
                    ],
                },
            ],
        }
    )
    return parse_park(data)
