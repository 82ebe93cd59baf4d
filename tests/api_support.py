"""A real database for the API tests: the two-site test park, readings stored through
ingest's writer and priced by the real engine (so the rollups are the engine's),
plus keys, alerts and quarantined messages."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, text

from api.auth import Role, create_key, revoke_key
from core import migrate
from core.park.models import Park
from core.park.repository import apply_park
from core.settings import Settings
from engine.service import refresh_until_clean
from ingest.parse import Parsed, Reading
from ingest.writer import BatchWriter, Message

T0 = datetime(2025, 6, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)
STEPS = 4 * 36  # 36 hours

# meter -> (kWh, m3, L or kg) per 15-minute step, for a few meters of each kind.
RATES = {
    "NCK-WWTP-E-01": 120.0,  # main meter
    "NCK-WWTP-E-02": 30.0,  # its sub-meter: totals leave it out
    "NCK-WWTP-W-01": 2.5,
    "NCK-PARK-S-01": 40.0,  # solar: avoided emissions
    "NCK-STL1-E-01": 300.0,
    "NCK-STL1-D-01": 5.0,  # diesel, scope 1
    "NCK-STL1-W-01": 1.25,
    "DVU-E1-M1": 10.0,
}
GAP_METER = "NCK-STL1-E-01"  # misses 3 hours of readings: estimated hours
GAP = range(40, 52)
GLITCH_METER = "NCK-WWTP-E-01"  # one reading of 0 in between: a glitch event
GLITCH_AT = 20


@dataclass
class ApiEnv:
    settings: Settings
    engine: Engine
    keys: dict[str, str]


def _readings() -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = {}
    for meter, rate in RATES.items():
        rows = []
        for i in range(STEPS + 1):
            if meter == GAP_METER and i in GAP:
                continue
            value = 0.0 if meter == GLITCH_METER and i == GLITCH_AT else 1000.0 + rate * i
            rows.append(Reading(meter, T0 + i * STEP, value))
        out[meter] = rows
    return out


def build(database_factory: Callable[[], Settings], park: Park) -> ApiEnv:
    # These modules try many wrong keys on purpose from one address; the throttle
    # has its own tests (tests/test_api_limits.py) with its defaults.
    settings = database_factory().model_copy(update={"api_auth_failure_burst": 100_000})
    engine = create_engine(settings.database_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        apply_park(conn, park)
    with closing(BatchWriter(settings.libpq_url)) as writer:
        for meter, rows in _readings().items():
            site = "DVU" if meter.startswith("DVU") else "NCK"
            writer.write([Message(f"parks/{site}/meters/{meter}", b"", Parsed(site, rows))])
    refresh_until_clean(engine)
    keys: dict[str, str] = {}
    with engine.begin() as conn:
        keys["admin"] = create_key(conn, "admin", Role.admin)
        keys["operator"] = create_key(conn, "operator", Role.operator)
        keys["wwtp"] = create_key(conn, "tenant-wwtp", Role.tenant, "NCK-WWTP")
        keys["stl1"] = create_key(conn, "tenant-stl1", Role.tenant, "NCK-STL1")
        keys["revoked"] = create_key(conn, "old-operator", Role.operator)
        revoke_key(conn, "old-operator")
        for rule, subject, enterprise, state in (
            ("roadmap_drift", "NCK/today", None, "firing"),
            ("meter_silent", "NCK-STL1-E-01", "NCK-STL1", "firing"),
            ("meter_silent", "NCK-WWTP-W-01", "NCK-WWTP", "resolved"),
            ("meter_silent", "NCK-WWTP-E-01", "NCK-WWTP", "firing"),
        ):
            conn.execute(
                text(
                    "INSERT INTO alerts (rule, subject, site_id, enterprise_id, state, summary, "
                    "resolved_at) VALUES (:r, :s, 'NCK', :e, :st, 'test', "
                    "CASE WHEN :st = 'resolved' THEN now() END)"
                ),
                {"r": rule, "s": subject, "e": enterprise, "st": state},
            )
        for n, payload in enumerate((b'{"ts": 1}', b"\xff\xfe not json", b"{}")):
            conn.execute(
                text(
                    "INSERT INTO quarantine (topic, site_id, meter_id, reason, detail, payload, "
                    "payload_sha256) VALUES (:t, 'NCK', 'NCK-WWTP-W-01', 'invalid', :d, :p, "
                    "sha256(:p))"
                ),
                {"t": "parks/NCK/meters/NCK-WWTP-W-01", "d": f"case {n}", "p": payload},
            )
    return ApiEnv(settings, engine, keys)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
