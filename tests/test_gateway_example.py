"""The integrators' example client (docs/examples/gateway_client.py) works as
docs/ingest.md says: through a broker crash, everything it sent is stored once
and confirmed by the service's committed position."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sqlalchemy import Engine, text

from core.park.models import Park
from core.settings import Settings
from tests.ingest_harness import BASE_TS, count, gateway
from tests.kit.broker import Broker
from tests.kit.ingest import running_ingest
from tests.kit.paths import ROOT


def _example() -> ModuleType:
    path = ROOT / "docs" / "examples" / "gateway_client.py"
    spec = importlib.util.spec_from_file_location("gateway_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_client_delivers_everything_once_through_a_broker_crash(
    park_db: tuple[Settings, Engine], own_broker: Broker, test_park: Park, tmp_path: Path
) -> None:
    settings, engine = park_db
    gw, meters = gateway(test_park, site_id="DVU", index=3)
    start = int(BASE_TS.timestamp())
    with running_ingest(settings, own_broker, "svc-ingest-3") as ingest:
        client = _example().GatewayClient(
            "127.0.0.1", own_broker.port, "DVU", gw, own_broker.password(gw),
            str(tmp_path / "buffer.sqlite"), resend_s=2.0,
        )  # fmt: skip
        try:
            for n in range(40):
                if n == 10:
                    ingest.stop()  # a backlog builds up in the broker ...
                if n == 20:
                    assert client.waiting() >= 10  # in flight: sent, not confirmed
                    own_broker.kill9()  # ... and dies with it
                    own_broker.start()
                    ingest.start()
                readings = [{"meter": m, "ts": start + 60 * n, "value": float(n)} for m in meters]
                client.send(readings)
            assert client.wait_all_committed(timeout=90), f"{client.waiting()} never confirmed"
        finally:
            client.close()
    with engine.connect() as conn:
        stored, distinct = conn.execute(
            text("SELECT count(*), count(DISTINCT (meter_id, ts)) FROM readings")
        ).one()
    assert stored == distinct == 40 * len(meters)
    assert count(engine, "quarantine") == 0
