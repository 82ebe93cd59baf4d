"""The park file's device mappings in the store, where ingest reads its routes.

Same discipline as core/park/repository.py: a row changes only when a value did,
so applying the same file twice writes nothing. A mapping dropped from the file is
deleted: it is routing, not history (readings keep their meter).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from core import topics
from core.park.models import Park

UPSERT = """
INSERT INTO gateway_devices (topic, field, protocol, device, meter_id, gateway_id,
                             enterprise_id, site_id, unit, timezone)
VALUES (:topic, :field, :protocol, :device, :meter_id, :gateway_id,
        :enterprise_id, :site_id, :unit, :timezone)
ON CONFLICT (topic, field) DO UPDATE SET
    protocol = EXCLUDED.protocol, device = EXCLUDED.device, meter_id = EXCLUDED.meter_id,
    gateway_id = EXCLUDED.gateway_id, enterprise_id = EXCLUDED.enterprise_id,
    site_id = EXCLUDED.site_id, unit = EXCLUDED.unit, timezone = EXCLUDED.timezone,
    updated_at = now()
WHERE (gateway_devices.protocol, gateway_devices.device, gateway_devices.meter_id,
       gateway_devices.gateway_id, gateway_devices.enterprise_id, gateway_devices.site_id,
       gateway_devices.unit, gateway_devices.timezone)
  IS DISTINCT FROM (EXCLUDED.protocol, EXCLUDED.device, EXCLUDED.meter_id,
       EXCLUDED.gateway_id, EXCLUDED.enterprise_id, EXCLUDED.site_id,
       EXCLUDED.unit, EXCLUDED.timezone)
RETURNING (xmax = 0) AS inserted
"""

DELETE_MISSING = """
DELETE FROM gateway_devices
WHERE NOT ((topic, field) IN (SELECT * FROM unnest(CAST(:topics AS text[]),
                                                  CAST(:fields AS text[]))))
"""


def device_rows(park: Park) -> list[dict[str, Any]]:
    """One row per mapped device field, with the topic it arrives on."""
    return [
        {
            "topic": topics.native(ent.protocol, ent.gateway_id, device.device, device.application),
            "field": device.field,
            "protocol": ent.protocol.value,
            "device": device.device,
            "meter_id": device.meter,
            "gateway_id": ent.gateway_id,
            "enterprise_id": ent.id,
            "site_id": site.id,
            "unit": device.unit,
            # Tasmota's `Time` is local: the device's zone, else its site's.
            "timezone": device.timezone or site.timezone,
        }
        for site in park.sites
        for ent in site.enterprises
        for device in ent.devices
    ]


def apply_device_rows(conn: Connection, park: Park) -> tuple[int, int, int]:
    """(inserted, updated, deleted) rows, within the caller's transaction; after the
    meters and enterprises they reference."""
    rows = device_rows(park)
    inserted = updated = 0
    for row in rows:
        result = conn.execute(text(UPSERT), row).scalar_one_or_none()
        inserted += result is True
        updated += result is False
    deleted = conn.execute(
        text(DELETE_MISSING),
        {"topics": [r["topic"] for r in rows], "fields": [r["field"] for r in rows]},
    ).rowcount
    return inserted, updated, deleted
