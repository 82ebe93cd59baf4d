"""The meter registry the parser validates against, loaded from the store.

Parsing runs on the MQTT thread and must not query per message, so the registry
is a dict swapped atomically on refresh (periodically, and on demand when a
message names a meter the registry does not know yet).
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, text

from ingest.adapters.base import DeviceRoute, routes_by_topic
from ingest.parse import MeterInfo

LOAD = """
SELECT m.id, m.site_id, m.unit, m.commissioned_at, m.active, e.gateway
FROM meters m JOIN enterprises e ON e.id = m.enterprise_id
WHERE cardinality(CAST(:sites AS text[])) = 0 OR m.site_id = ANY(CAST(:sites AS text[]))
"""

LOAD_DEVICES = """
SELECT topic, protocol, device, field, meter_id, gateway_id, site_id, unit, timezone
FROM gateway_devices
WHERE cardinality(CAST(:sites AS text[])) = 0 OR site_id = ANY(CAST(:sites AS text[]))
ORDER BY topic, field
"""


def load_meters(conn: Connection, sites: list[str]) -> dict[str, MeterInfo]:
    """The registered meters (of `sites`, or all when empty) as the parser needs them."""
    rows = conn.execute(text(LOAD), {"sites": sites}).all()
    return {
        r.id: MeterInfo(r.id, r.site_id, r.unit, r.commissioned_at, r.active, r.gateway)
        for r in rows
    }


def load_routes(conn: Connection, sites: list[str]) -> dict[str, tuple[DeviceRoute, ...]]:
    """The device routes (SPEC section 3.1) by native topic, for the adapters."""
    return routes_by_topic(r._mapping for r in conn.execute(text(LOAD_DEVICES), {"sites": sites}))


class MeterRegistry:
    def __init__(self, engine: Engine, sites: list[str]) -> None:
        self._engine = engine
        self._sites = sites
        self.meters: dict[str, MeterInfo] = {}
        # Native device topic -> the fields it carries (SPEC section 3.1).
        self.routes: dict[str, tuple[DeviceRoute, ...]] = {}
        self.loaded_at = 0.0

    def refresh(self) -> dict[str, MeterInfo]:
        with self._engine.connect() as conn:
            self.meters = load_meters(conn, self._sites)
            self.routes = load_routes(conn, self._sites)
        self.loaded_at = time.monotonic()
        return self.meters

    def age_s(self) -> float:
        return time.monotonic() - self.loaded_at
