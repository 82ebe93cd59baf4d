"""bench.engine's table, and the goals of issue 13 a run missed."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from bench.engine.plan import (
    GOAL_P99_S,
    GOAL_RECOMPUTE_READINGS_PER_S,
    GOAL_SCALE_KEEP_UP,
    GOAL_SCALE_P99_S,
    GOAL_TOTALS_YEAR_S,
)
from bench.engine.scale import scale_rows
from bench.engine.totals import totals_rows
from bench.report import VERIFIED, fmt


def _recompute_rows(table: Table, r: dict[str, Any]) -> None:
    pm = r["per_meter_refresh"]
    table.add_row(
        "1",
        "Recompute throughput",
        fmt(r["meter_hours_per_s"], " meter-h/s"),
        f"{r['hour_rows_written']:,} hour rows from {r['dirty_marks']:,} marks in "
        f"{r['seconds']:.1f} s; {r['meters']} meters x {r['days']} days",
    )
    table.add_row(
        "1",
        "  readings processed",
        fmt(r["readings_per_s"], " readings/s"),
        f"{r['readings']:,} readings; {fmt(pm.get('mean_ms'), ' ms')} per batch transaction (mean)",
    )
    table.add_row(
        "1",
        "  check",
        f"{r['hour_rows']:,} / {r['expected_hour_rows']:,} rows",
        f"{VERIFIED[r['verified']]}: totals of {r['meters']} meters, {r['wrap_events']} "
        f"wraps; history loaded by COPY at {fmt(r['copy_rows_per_s'])} rows/s",
    )
    if (w := r.get("workers")) is not None:
        table.add_row(
            "1",
            f"  1 engine process, {w['workers']} worker threads",
            fmt(w["readings_per_s"], " readings/s"),
            f"{w['seconds']:.1f} s; " + VERIFIED[w["verified"]],
        )
    if (k := r.get("engines")) is not None:
        took = f"{k['seconds']:.1f} s" if k["seconds"] else f"> {k['more_than_s']:.0f} s"
        table.add_row(
            "1",
            f"  {k['engines']} engine processes, same marks",
            fmt(k.get("readings_per_s"), " readings/s"),
            f"{took}; " + VERIFIED[k["verified"]] if "verified" in k else took,
        )
    if (b := r.get("baseline")) is not None:
        took = f"{b['seconds']:.1f} s" if b["seconds"] else f"> {b['more_than_s']:.0f} s"
        table.add_row(
            "1",
            "  baseline engine, same marks",
            fmt(b.get("readings_per_s"), " readings/s"),
            f"{took}; current x{fmt(r.get('speedup_vs_baseline'), '', 1)} faster",
        )


def _freshness_rows(table: Table, f: dict[str, Any]) -> None:
    er = f["engine_refresh"]
    goal = f["p99_s"] <= GOAL_P99_S
    filled = f" (hour filled {f['fill_minutes']:g} min)" if f["fill_minutes"] else ""
    table.add_row(
        "2",
        f"Freshness at {f['offered_readings_per_s']:,} readings/s{filled}",
        f"p50 {fmt(f['p50_s'], ' s', 2)} / p99 {fmt(f['p99_s'], ' s', 2)}",
        f"max {fmt(f['max_s'], ' s', 2)}; {f['probes_measured']} probes; goal p99 <= "
        f"{GOAL_P99_S:g} s: " + ("[green]PASS[/green]" if goal else "[red]FAIL[/red]"),
    )
    table.add_row(
        "2",
        "  by 5 s of the run",
        "max " + " ".join(fmt(w["max_s"], "", 2) for w in f["by_window"]) + " s",
        "p50 " + " ".join(fmt(w["p50_s"], "", 2) for w in f["by_window"]) + " s",
    )
    table.add_row(
        "2",
        "  publish -> ingest txn start",
        f"p50 {fmt(f['ingest_txn_start_p50_s'], ' s', 2)} / "
        f"p99 {fmt(f['ingest_txn_start_p99_s'], ' s', 2)}",
        "the rest (ingest commit + engine): p50 "
        f"{fmt(f['after_ingest_txn_start_p50_s'], ' s', 2)} / p99 "
        f"{fmt(f['after_ingest_txn_start_p99_s'], ' s', 2)}",
    )
    series = [w for w in f["backlog_series"] if w["mean_refresh_ms"] is not None]
    trend = (
        f"; mean {fmt(series[0]['mean_refresh_ms'], ' ms', 1)} at the start, "
        f"{fmt(series[-1]['mean_refresh_ms'], ' ms', 1)} at the end"
        if series
        else ""
    )
    table.add_row(
        "2",
        "  engine refresh per meter",
        f"mean {fmt(er.get('mean_ms'), ' ms', 1)}",
        f"{er['count']:,} refreshes, p99 <= {fmt(er.get('p99_at_most_s'), ' s', 3)} "
        f"(buckets){trend}; {fmt(f['engine_hour_rows_written'])} hour rows written",
    )
    table.add_row(
        "2",
        "  dirty backlog (meter-hours)",
        f"max {fmt(f['dirty_backlog_max'])} / mean {fmt(f['dirty_backlog_mean'], '', 1)}",
        f"empty {fmt(f['backlog_drained_after_last_publish_s'], ' s', 1)} after the last publish",
    )
    table.add_row(
        "2",
        "  load",
        fmt(f["published_readings_per_s"], " readings/s"),
        f"{f['stored']:,}/{f['readings']:,} stored; {f['load_meters']} meters on "
        f"{f['load_gateways']} gateways; max publisher lag "
        f"{fmt(f['max_publisher_lag_ms'], ' ms')}",
    )
    rb = f["live_hours_vs_rebuild"]
    table.add_row(
        "2",
        "  live hours = full rebuild?",
        f"{rb['hour_rows_live']:,} / {rb['hour_rows_rebuilt']:,} rows",
        f"{VERIFIED[f['verified']]}: {rb['differing']} differ (max |diff| "
        f"{rb['max_abs_difference']:.2g}), {rb['only_live']} only live, "
        f"{rb['only_rebuilt']} only rebuilt; rebuild {rb['rebuild_s']:.1f} s",
    )


def report_table(figures: dict[str, Any]) -> Table:
    table = Table(title="Engine benchmark")
    table.add_column("#")
    table.add_column("Measure")
    table.add_column("Figure", justify="right")
    table.add_column("Detail")
    for num, name, rows in (
        ("1", "recompute", _recompute_rows),
        ("2", "freshness", _freshness_rows),
        ("3", "scale", lambda t, f: scale_rows(t, f, GOAL_SCALE_KEEP_UP, GOAL_SCALE_P99_S)),
        ("4", "totals", lambda t, f: totals_rows(t, f, GOAL_TOTALS_YEAR_S)),
    ):
        if (f := figures.get(name)) is None:
            continue
        if "error" in f:
            table.add_row(num, name, "[red]failed[/red]", f["error"][:300])
        else:
            rows(table, f)
    return table


def missed_goals(figures: dict[str, Any]) -> list[str]:
    """Issue 13's goals the current engine missed in this run (ok when a step did
    not run or failed: failures are reported on their own)."""
    missed = []
    r = figures.get("recompute", {})
    rate = max(
        r.get("readings_per_s", math.inf),
        r.get("workers", {}).get("readings_per_s", 0),
        r.get("engines", {}).get("readings_per_s", 0),
    )
    if rate < GOAL_RECOMPUTE_READINGS_PER_S:
        missed.append(
            f"recompute {rate:,.0f} readings/s < 500,000 (best of 1 worker, --engines "
            "workers in one process and --engines processes)"
        )
    f = figures.get("freshness", {})
    if f.get("p99_s", 0.0) > GOAL_P99_S:
        missed.append(f"freshness p99 {f['p99_s']:.2f} s > {GOAL_P99_S:g} s")
    runs = figures.get("scale", {}).get("runs", {})
    if runs:
        # The goal is for the machine: the current engine in its best measured
        # deployment (one process, or --engines of them).
        largest = runs[max(runs, key=int)]
        name, best = min(
            ((k, r) for k, r in largest.items() if k.startswith("current")),
            key=lambda kr: kr[1]["freshness_p99_s"] or math.inf,
        )
        if best["keep_up_ratio"] < GOAL_SCALE_KEEP_UP:
            missed.append(f"scale keep-up {best['keep_up_ratio']:.2f} < 1 ({name})")
        if (best["freshness_p99_s"] or math.inf) > GOAL_SCALE_P99_S:
            missed.append(f"scale freshness p99 {best['freshness_p99_s']:.1f} s > 10 s ({name})")
    year = figures.get("totals", {}).get("year", {}).get("current")
    if year is not None and (year["seconds"] or math.inf) > GOAL_TOTALS_YEAR_S:
        missed.append(f"a year of totals took {year['seconds'] or '>cap'} s > 10 s")
    return missed
