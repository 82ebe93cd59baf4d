"""The engine side of bench.engine's steps, as a process of its own.

Run by path with `-P` (`python -P bench/engine/worker.py MODE ...`: its folder
stays off sys.path), with the engine's source tree first on PYTHONPATH: the
benchmark runs this very file against the current tree and against a baseline
tree (an export of an earlier commit), so both are measured the same way on the
same data. It uses only what both engines have:
`engine.service.refresh_pass` / `refresh_until_clean` and
`engine.rollups.refresh_totals`.

Modes (each prints one JSON line on stdout):
- drain: refresh until no dirty mark is left; seconds, hour rows, CPU seconds.
- loop: refresh passes until SIGTERM; the pass count and CPU seconds at the end.
- totals: every enterprise's and site's totals over [--from, --to).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, event, text

APP_NAME = "bench-engine"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make(url: str) -> Any:
    """An engine whose connections carry an application name, so the benchmark can
    add the database backends' CPU to this process's."""
    engine = create_engine(url, pool_size=2, max_overflow=2)

    @event.listens_for(engine, "connect")
    def _name(dbapi_connection: Any, _: Any) -> None:
        with dbapi_connection.cursor() as cur:
            cur.execute(f"SET application_name = '{APP_NAME}'")
        dbapi_connection.commit()

    return engine


def drain(url: str) -> dict[str, Any]:
    from engine.service import refresh_until_clean  # noqa: PLC0415 (the tree on PYTHONPATH)

    engine = make(url)
    cpu, started = cpu_seconds(), time.perf_counter()
    written = refresh_until_clean(engine, max_passes=1_000_000)
    return {
        "seconds": time.perf_counter() - started,
        "hour_rows_written": written,
        "cpu_s": cpu_seconds() - cpu,
    }


def loop(url: str) -> dict[str, Any]:
    from engine.service import refresh_pass  # noqa: PLC0415

    engine = make(url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cpu = cpu_seconds()
    passes = 0
    print(json.dumps({"ready": True}), flush=True)
    while not stop.is_set():
        refreshed, _ = refresh_pass(engine)
        passes += 1
        if not refreshed:
            stop.wait(0.05)
    return {"passes": passes, "cpu_s": cpu_seconds() - cpu}


def totals(url: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Every enterprise's totals over the window: in one call where the engine
    has one (`refresh_all_totals`: each site's once), else one call per
    enterprise, as bench/api.py does."""
    from engine import rollups  # noqa: PLC0415

    engine = make(url)
    with engine.connect() as conn:
        pairs = [
            (str(s), str(e))
            for s, e in conn.execute(
                text("SELECT DISTINCT site_id, enterprise_id FROM meters ORDER BY 1, 2")
            )
        ]
    started = time.perf_counter()
    if hasattr(rollups, "refresh_all_totals"):
        with engine.begin() as conn:
            rollups.refresh_all_totals(conn, pairs, start, end)
    else:
        for site, enterprise in pairs:
            with engine.begin() as conn:
                rollups.refresh_totals(conn, site, enterprise, start, end)
    return {"seconds": time.perf_counter() - started, "enterprises": len(pairs)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["drain", "loop", "totals"])
    parser.add_argument(
        "--db-url-env", required=True, help="environment variable holding the database URL"
    )
    parser.add_argument("--from", dest="start", type=datetime.fromisoformat)
    parser.add_argument("--to", dest="end", type=datetime.fromisoformat)
    args = parser.parse_args()
    url = os.environ[args.db_url_env]
    if args.mode == "drain":
        result = drain(url)
    elif args.mode == "loop":
        result = loop(url)
    else:
        result = totals(url, args.start, args.end)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
