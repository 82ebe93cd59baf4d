"""Ingest benchmark: ceilings, the ingestor end to end, latency at a fixed rate, a naive baseline.

Everything runs on this machine in one go: a throw-away database on the project's
PostgreSQL + TimescaleDB instance, a Mosquitto broker rendered from the project's
own configuration on a free port, publisher processes (multiprocessing, so they
share no GIL with what they measure) and `emissions ingest` as a subprocess. All
of it is removed at the end, on Ctrl-C and on errors too. bench/README.md says
what each figure means and how it is measured.

    .venv/bin/python -m bench.ingest [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from bench import ROOT
from bench.adapters import canonical_park, run_adapters
from bench.ingest.ceilings import run_bare, run_bare_drain, run_naive
from bench.ingest.diagnostics import run_copy, run_parse, run_pipeline, run_writer
from bench.ingest.latency import run_ingest_drain, run_latency
from bench.ingest.plan import BASE, DEFAULT_SIZES, QUICK_SIZES, Bench
from bench.ingest.tables import goals_table, ratios, report_table
from bench.ingest.throughput import run_ingest_throughput, warm_up
from bench.publishers.canonical import park_gateways
from bench.report import console, environment, new_results, run_main, run_steps, selected
from bench.stack.broker import wipe_session
from bench.stack.local import local_stack
from bench.stack.profiler import Profiler
from bench.stack.services import INGEST_USER, ServiceDiedError, start_service
from core.broker.render import BrokerLimits
from core.park.loader import load_park
from core.settings import Settings
from ingest.meters import MeterRegistry

INGEST_STEPS = ("ingest_single", "ingest_drain", "ingest_batch", "latency_batch", "latency_single")
ALL_STEPS = (
    "parse",
    "adapters",
    "writer",
    "pipeline",
    "copy",
    "bare_subscriber",
    "bare_drain",
    *INGEST_STEPS,
    "naive",
)


def ingest_settings() -> dict[str, Any]:
    s = Settings()
    return {
        "ingest_batch_readings": s.ingest_batch_readings,
        "ingest_batch_deadline_ms": s.ingest_batch_deadline_ms,
        "ingest_max_inflight": s.ingest_max_inflight,
        "mqtt_protocol": s.mqtt_protocol,
        "broker_limits": asdict(BrokerLimits()),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument(
        "--ingest-cmd",
        default=f"{Path(sys.executable).parent / 'emissions'} ingest",
        help="command that runs the ingestor (default: the venv's `emissions ingest`)",
    )
    parser.add_argument(
        "--publishers", type=int, default=1, help="publisher processes per throughput run"
    )
    parser.add_argument("--py-spy", metavar="PATH", help="record the ingestor with this py-spy")
    parser.add_argument(
        "--py-spy-format", choices=["flamegraph", "speedscope", "raw"], default="flamegraph"
    )
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="sample only the thread holding the GIL"
    )
    parser.add_argument(
        "--only", metavar="STEPS", help=f"comma-separated subset of: {', '.join(ALL_STEPS)}"
    )
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, stamp: str, stack: contextlib.ExitStack) -> dict[str, Any]:
    """Set everything up (each piece registers its clean-up on `stack`) and run."""
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    only = selected(args.only, ALL_STEPS)
    results = new_results("ingest", args.quick, sizes, settings=ingest_settings())
    figures: dict[str, Any] = results["figures"]
    # The canonical paths are what this measures; device payloads: the `adapters` step.
    demo_park = load_park(ROOT / "config" / "park.yaml")
    park = canonical_park(demo_park)
    local = local_stack(park, stack, "emissions-bench-")
    settings, broker, conn, base = local.settings, local.broker, local.conn, local.workdir
    engine = create_engine(settings.database_url)
    stack.callback(engine.dispose)
    results["environment"] = environment(settings)
    profiler = Profiler(args.py_spy, args.py_spy_format, args.results_dir, stamp, args.py_spy_gil)
    bench = Bench(
        sizes, settings, broker, park_gateways(park), base, conn, profiler, args.publishers
    )
    bench.meters = MeterRegistry(engine, []).refresh()
    console.print(
        f"[dim]database {settings.db_name}, broker on port {broker.port}, "
        f"{len(bench.meters)} meters[/dim]"
    )
    run_steps(
        [
            ("parse", lambda: run_parse(bench)),
            ("adapters", lambda: run_adapters(demo_park, sizes.parse_messages, BASE)),
            ("writer", lambda: run_writer(bench)),
            ("pipeline", lambda: run_pipeline(bench, engine)),
            ("copy", lambda: run_copy(bench)),
            ("bare_subscriber", lambda: run_bare(bench)),
            ("bare_drain", lambda: run_bare_drain(bench)),
        ],
        figures,
        only,
    )
    try:
        if not only & set(INGEST_STEPS):
            raise LookupError
        bench.ingestor = start_service(
            shlex.split(args.ingest_cmd), settings, broker, INGEST_USER, base, "ingestor"
        )
        stack.callback(bench.ingestor.stop)
        results["warm_up_s"] = warm_up(bench)
        run_steps(
            [
                ("ingest_single", lambda: run_ingest_throughput(bench, "single")),
                ("ingest_drain", lambda: run_ingest_drain(bench)),
                ("ingest_batch", lambda: run_ingest_throughput(bench, "batch")),
                ("latency_batch", lambda: run_latency(bench, "batch")),
                ("latency_single", lambda: run_latency(bench, "single")),
            ],
            figures,
            only,
            fatal=(ServiceDiedError,),
        )
    except LookupError:
        pass  # no ingestor run selected
    except (ServiceDiedError, TimeoutError, RuntimeError) as exc:
        figures["ingestor"] = {"error": str(exc)}
        console.print(f"[red]ingestor runs aborted[/red]: {exc}")
    if bench.ingestor is not None:
        bench.ingestor.stop()
        wipe_session(broker, INGEST_USER)
    run_steps([("naive", lambda: run_naive(bench))], figures, only)
    results["ratios"] = ratios(figures)
    if profiler.files:
        results["profiles"] = profiler.files
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "ingest",
        args,
        lambda stamp, stack: run_all(args, stamp, stack),
        lambda results: [report_table(results["figures"]), goals_table(results["ratios"])],
    )


if __name__ == "__main__":
    sys.exit(main())
