"""The meter registry the parser validates against, loaded from the store.

Parsing runs on the MQTT thread and must not query per message, so the registry
is a dict swapped atomically on refresh (periodically, and on demand when a
message names a meter the registry does not know yet).
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, text

from ingest.parse import MeterInfo

LOAD = """
SELECT m.id, m.site_id, m.unit, m.commissioned_at, m.active, e.gateway
FROM meters m JOIN enterprises e ON e.id = m.enterprise_id
WHERE cardinality(CAST(:sites AS text[])) = 0 OR m.site_id = ANY(CAST(:sites AS text[]))
"""


def load_meters(conn: Connection, sites: list[str]) -> dict[str, MeterInfo]:
    """The registered meters (of `sites`, or all when empty) as the parser needs them."""
    rows = conn.execute(text(LOAD), {"sites": sites}).all()
    return {
        r.id: MeterInfo(r.id, r.site_id, r.unit, r.commissioned_at, r.active, r.gateway)
        for r in rows
    }


class MeterRegistry:
    def __init__(self, engine: Engine, sites: list[str]) -> None:
        self._engine = engine
        self._sites = sites
        self.meters: dict[str, MeterInfo] = {}
        self.loaded_at = 0.0

    def refresh(self) -> dict[str, MeterInfo]:
        with self._engine.connect() as conn:
            self.meters = load_meters(conn, self._sites)
        self.loaded_at = time.monotonic()
        return self.meters

    def age_s(self) -> float:
        return time.monotonic() - self.loaded_at
