"""Quarantine growth when one gateway floods it: bytes added to the table, rows kept,
rows counted as dropped, for a source tree (this one, or --src an older commit).

One gateway of the sample park publishes on its own batch topic (a) `--batches`
batches of `--readings` readings that name an unregistered meter, and (b)
`--oversized` payloads of 512 KiB (over the ingest payload limit). The tree's own
`emissions db upgrade`, `config apply` and `emissions ingest` run against a
throw-away database and broker; when the ingestor has counted every message,
the quarantine's size (pg_total_relation_size) and rows are read. Writes
bench/results/quarantine-flood-<UTC timestamp>.json.

    .venv/bin/python -m bench.quarantine_flood [--src DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import ROOT
from bench.report import write_results
from bench.stack.broker import mqtt_close, mqtt_connect, start_broker, wipe_session
from bench.stack.database import throwaway_database
from bench.stack.processes import free_port
from bench.stack.services import INGEST_USER, Service
from core import topics
from core.park.loader import load_park
from core.settings import Settings

CLI = [sys.executable, "-m", "cli"]


def flood(batches: int, readings: int, oversized: int) -> list[bytes]:
    out = []
    for n in range(batches):
        items = [
            {"meter": "NOT-REGISTERED", "ts": 1_767_571_200 + n * readings + i, "value": 1.0}
            for i in range(readings)
        ]
        out.append(json.dumps({"readings": items}).encode())
    for n in range(oversized):
        out.append(b'{"readings": [], "pad": "%d' % n + b"x" * (512 * 1024) + b'"}')
    return out


def database(src: Path, stack: contextlib.ExitStack) -> tuple[Settings, dict[str, str]]:
    """A throw-away database migrated by the tree's own CLI, with the sample park."""
    settings = throwaway_database(stack)
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "EMISSIONS_DB_NAME": settings.db_name,
        "EMISSIONS_DB_PASSWORD": settings.db_password.get_secret_value()
        if settings.db_password
        else "",
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }
    for step in (["db", "upgrade"], ["config", "apply", str(ROOT / "config" / "park.yaml")]):
        subprocess.run([*CLI, *step], cwd=src, env=env, check=True, capture_output=True)
    return settings, env


def quarantine_state(settings: Settings) -> tuple[int, int, int]:
    """(table bytes, rows, rows counted as dropped)."""
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
        size = conn.execute("SELECT pg_total_relation_size('quarantine')").fetchone()
        rows = conn.execute("SELECT count(*) FROM quarantine").fetchone()
        has_drops = conn.execute("SELECT to_regclass('quarantine_drops') IS NOT NULL").fetchone()
        drops = (
            conn.execute("SELECT coalesce(sum(dropped), 0) FROM quarantine_drops").fetchone()
            if has_drops and has_drops[0]
            else (0,)
        )
    assert size and rows and drops
    return int(size[0]), int(rows[0]), int(drops[0])


def run(src: Path, payloads: list[bytes]) -> dict[str, Any]:
    park = load_park(ROOT / "config" / "park.yaml")
    site, gateway = next((s.id, e.gateway_id) for s in park.sites for e in s.enterprises)
    with contextlib.ExitStack() as stack:
        settings, env = database(src, stack)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qflood-")))
        work.chmod(0o755)  # a broker started as root reads its files as `mosquitto`
        broker = start_broker(park, work, stack)
        wipe_session(broker, INGEST_USER)
        health = free_port()
        ingest_env = {
            **env,
            "EMISSIONS_MQTT_PORT": str(broker.port),
            "EMISSIONS_MQTT_USERNAME": INGEST_USER,
            "EMISSIONS_MQTT_PASSWORD": broker.password(INGEST_USER),
            "EMISSIONS_INGEST_HEALTH_PORT": str(health),
        }
        ingestor = Service([*CLI, "ingest"], ingest_env, health, work)  # log in work
        ingestor.start()
        stack.callback(ingestor.stop)
        ingestor.wait_healthy()
        time.sleep(1.0)  # an older tree has no readiness signal: let it subscribe
        before, _, _ = quarantine_state(settings)
        client, _ = mqtt_connect(broker.port, gateway, broker.password(gateway))
        started = time.monotonic()
        infos = [client.publish(topics.batch("parks", site, gateway), p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(120)
        mqtt_close(client)
        deadline = time.monotonic() + 300
        while ingestor.metrics().get("emissions_ingest_messages_total", 0) < len(payloads):
            ingestor.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the ingestor did not count every message")
            time.sleep(0.2)
        seconds = time.monotonic() - started
        time.sleep(1.0)  # the last batch's commit follows its count
        after, rows, dropped = quarantine_state(settings)
    return {
        "messages": len(payloads),
        "published_mb": round(sum(map(len, payloads)) / 2**20, 1),
        "quarantine_growth_mb": round((after - before) / 2**20, 1),
        "rows_kept": rows,
        "rows_counted_as_dropped": dropped,
        "seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--readings", type=int, default=200)
    parser.add_argument("--oversized", type=int, default=20)
    args = parser.parse_args()
    result = run(args.src.resolve(), flood(args.batches, args.readings, args.oversized))
    result["rejections"] = args.batches * args.readings + args.oversized
    print(json.dumps(result, indent=2))
    report = {
        "benchmark": "quarantine_flood",
        "src": str(args.src.resolve()),
        "results": result,
        "load_average": os.getloadavg(),
    }
    write_results("quarantine-flood", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
