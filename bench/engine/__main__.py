"""Engine benchmark: recompute throughput, and freshness of the hourly table under load.

1. Recompute: a month of per-minute readings for every meter of the sample park is
   loaded with binary COPY, every meter-hour is marked dirty, and
   `refresh_until_clean` runs in this process: meter-hours and readings per second,
   checked against what the construction implies (row count, per-meter totals,
   wrap events).
2. Freshness: `emissions ingest` and `emissions engine run` as subprocesses, a
   publisher process sending live 50-reading gateway batches at 5,000 readings/s
   plus a probe reading every 100 ms; an observer here polls the probe meter's
   hourly sum to see when each probe is reflected.
3. Scale (scale.py) and 4. totals (totals.py), optionally beside a baseline engine.

It runs on bench/stack (throw-away database, private broker, services); all of
it is removed at the end, on Ctrl-C and on errors too. bench/README.md says what
each figure means and how it is measured.

    .venv/bin/python -m bench.engine [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.adapters import canonical_park
from bench.engine.freshness import run_freshness
from bench.engine.plan import (
    DEFAULT_SIZES,
    GOAL_P99_S,
    QUICK_SIZES,
    SCALE_SIZES,
    STEPS,
    park_meters,
)
from bench.engine.recompute import run_recompute
from bench.engine.scale import run_scale
from bench.engine.tables import missed_goals, report_table
from bench.engine.totals import run_totals
from bench.engine.variants import Variant
from bench.publishers.canonical import park_gateways
from bench.report import console, environment, new_results, run_main, run_steps, selected
from bench.stack.local import local_stack
from bench.stack.profiler import Profiler
from core.park.loader import load_park


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    bin_dir = Path(sys.executable).parent
    parser.add_argument(
        "--ingest-cmd", default=f"{bin_dir / 'emissions'} ingest", help="the ingestor's command"
    )
    parser.add_argument(
        "--engine-cmd",
        default=f"{bin_dir / 'emissions'} engine run",
        help="the engine's command (--health-port is appended)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="record this process during the recompute and the engine during the load",
    )
    parser.add_argument(
        "--py-spy-format", choices=["flamegraph", "speedscope", "raw"], default="flamegraph"
    )
    parser.add_argument(
        "--fill-minutes",
        type=float,
        default=0.0,
        metavar="M",
        help="freshness as at minute M (< 60) of a live hour: fill its first M minutes first",
    )
    parser.add_argument("--only", metavar="STEPS", help=f"subset of: {', '.join(STEPS)}")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        help="a source tree of the engine to compare with (e.g. `git archive` of main), "
        "measured beside the current one in the recompute, scale and totals steps",
    )
    parser.add_argument("--scale-sizes", default=SCALE_SIZES, help="meter counts of the scale step")
    parser.add_argument("--scale-waves", type=int, default=2, help="measured minutes per N")
    parser.add_argument(
        "--engines",
        type=int,
        default=2,
        metavar="K",
        help="recompute step: also measure the current engine as K worker threads of one "
        "process and as K processes; scale step: as K processes (1: only one worker)",
    )
    parser.add_argument(
        "--cap-s", type=float, default=120.0, help="stop a variant's wave or totals after this"
    )
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, stamp: str, stack: contextlib.ExitStack) -> dict[str, Any]:
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    only = selected(args.only, STEPS)
    results = new_results("engine", args.quick, sizes, goal_p99_freshness_s=GOAL_P99_S)
    figures: dict[str, Any] = results["figures"]
    # Every gateway publishes the canonical JSON the load generator sends (device
    # payloads are bench.ingest's `adapters` step): with the demo park's native-only
    # gateways, their readings were quarantined and the freshness check failed.
    park = canonical_park(load_park(ROOT / "config" / "park.yaml"))
    local = local_stack(park, stack, "emissions-bench-engine-")
    settings, broker, conn, base = local.settings, local.broker, local.conn, local.workdir
    results["environment"] = environment(settings) | {"code_root": str(ROOT)}
    profiler = Profiler(args.py_spy, args.py_spy_format, args.results_dir, stamp, prefix="engine")
    meters = park_meters(conn)
    gateways = park_gateways(park)
    console.print(
        f"[dim]database {settings.db_name}, broker on port {broker.port}, "
        f"{len(meters)} meters[/dim]"
    )
    variants = [Variant("current", ROOT)]
    baseline = Variant("baseline", args.baseline.resolve()) if args.baseline else None
    if baseline is not None:
        variants.insert(0, baseline)
    # Totals before scale: the year is loaded for every meter of the database, and
    # the scale step adds up to 50,000.
    run_steps(
        [
            (
                "recompute",
                lambda: run_recompute(
                    settings, conn, meters, sizes, profiler, baseline, 3 * args.cap_s, args.engines
                ),
            ),
            (
                "freshness",
                lambda: run_freshness(
                    args, settings, conn, broker, meters, gateways, sizes, base, profiler, stack
                ),
            ),
            ("totals", lambda: run_totals(settings, variants, args.cap_s)),
            (
                "scale",
                lambda: run_scale(
                    settings,
                    conn,
                    [int(n) for n in args.scale_sizes.split(",")],
                    variants,
                    args.scale_waves,
                    args.cap_s,
                    args.engines,
                ),
            ),
        ],
        figures,
        only,
    )
    if profiler.files:
        results["profiles"] = profiler.files
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 <= args.fill_minutes < 60:
        raise SystemExit("--fill-minutes: 0 <= M < 60")
    return run_main(
        "engine",
        args,
        lambda stamp, stack: run_all(args, stamp, stack),
        lambda results: [report_table(results["figures"])],
        missed_goals,
    )


if __name__ == "__main__":
    sys.exit(main())
