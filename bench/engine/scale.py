"""Scale step of bench.engine: N meters reading once a minute, N up to 50,000.

A compressed clock keeps the per-meter rhythm: wave k carries one reading per
meter at minute k of a past hour (meter i at second i mod 30 of it), written as
fast as ingest would, through ingest's own `BatchWriter` (COPY + the dirty
marks, 5,000 readings per transaction). Wave 0 gives every meter its first
reading (a baseline only) and is absorbed before measuring, by the current
engine for either variant, so both start from the same state. Then the engine
under test runs as `bench/engine/worker.py loop` (its own process, its own
source tree: the current one or a baseline export) and each measured wave is
written while it runs:

- absorb: from the wave's first write to the moment no dirty mark is left;
  keep-up ratio = 60 s / absorb (>= 1: one engine keeps up with N meters);
- freshness: for a sample of up to 1,000 meters, from the commit of the
  transaction holding its reading to the first poll (every 50 ms) that shows
  the meter's watermark at that reading (the watermark and the hour rows are
  written in one transaction);
- CPU: the worker's and its database backends' CPU seconds (read from /proc,
  the database runs on this machine) per 1,000 meter-minutes.

A variant that has not absorbed a wave after `cap_s` is stopped there; its
absorb time is then projected from the share of sampled meters it priced
(`projected: true`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.engine.variants import Variant, run_worker, start_workers
from bench.report import pct
from bench.stack.database import Conn, scalar
from core import dirty_marks, topics
from core.settings import Settings
from ingest.parse import Parsed, Reading
from ingest.writer import BatchWriter, Message

SITE = "SCL"
PER_ENTERPRISE = 100
CHUNK = 5_000
SAMPLE = 1_000
# Minute 0 of a past hour, after every bench meter's commissioning.
BASE = datetime(2025, 10, 1, 3, 0, tzinfo=UTC)
ENGINE_TABLES = (
    "readings, hourly_emissions, dirty_meter_hours, data_quality_events, enterprise_hourly, "
    "site_hourly, meter_engine_state, totals_versions"
)


def create_meters(conn: Conn, n: int) -> list[str]:
    """A site of n counter meters (kWh, the sample park's grid factor), 100 per
    enterprise; created once, the largest N's meters are a superset of the others'."""
    factor = scalar(conn, "SELECT factor_key FROM meters WHERE kind = 'electricity' LIMIT 1")
    conn.execute(
        "INSERT INTO sites (id, name, timezone) VALUES (%s, 'Scale', 'Asia/Ho_Chi_Minh') "
        "ON CONFLICT DO NOTHING",
        (SITE,),
    )
    conn.execute(
        "INSERT INTO enterprises (id, site_id, name, industry, gateway) "
        "SELECT format('SCL-E%%s', lpad(e::text, 4, '0')), %s, 'e', 'bench', "
        "format('SCL-GW%%s', lpad(e::text, 4, '0')) FROM generate_series(0, %s) AS e "
        "ON CONFLICT DO NOTHING",
        (SITE, (n - 1) // PER_ENTERPRISE),
    )
    conn.execute(
        "INSERT INTO meters (id, site_id, enterprise_id, kind, unit, reading, factor_key, "
        "commissioned_at) SELECT format('SCL-M%%s', lpad(i::text, 6, '0')), %s, "
        "format('SCL-E%%s', lpad((i / %s)::text, 4, '0')), 'electricity', 'kWh', 'counter', "
        "%s, '2020-01-01T00:00:00Z' FROM generate_series(0, %s) AS i ON CONFLICT DO NOTHING",
        (SITE, PER_ENTERPRISE, factor, n - 1),
    )
    return [f"SCL-M{i:06d}" for i in range(n)]


def reading_ts(wave: int, i: int) -> datetime:
    return BASE + timedelta(minutes=wave, seconds=i % 30)


def write_wave(writer: BatchWriter, meters: list[str], wave: int) -> tuple[float, list[float]]:
    """One reading per meter; (start, commit time of each chunk), wall clock."""
    started = time.time()
    commits: list[float] = []
    for lo in range(0, len(meters), CHUNK):
        readings = [
            Reading(m, reading_ts(wave, i), 1000.0 + wave * (1.0 + i % 7))
            for i, m in enumerate(meters[lo : lo + CHUNK], start=lo)
        ]
        writer.write([Message(topics.batch("parks", SITE, "bench"), b"", Parsed(SITE, readings))])
        commits.append(time.time())
    return started, commits


def proc_cpu(pid: int) -> float:
    """utime + stime of a process on this machine, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker:
    """`worker.py loop` on one variant's tree, in `engines` processes (they share the
    queue as production engines do: each batch's meters are claimed with
    try-locks); CPU of them and their backends."""

    def __init__(self, variant: Variant, settings: Settings, conn: Conn, engines: int = 1) -> None:
        self.conn = conn
        self.procs = start_workers(variant, settings, "loop", engines)
        for proc in self.procs:
            assert proc.stdout is not None
            if json.loads(proc.stdout.readline() or "{}").get("ready") is not True:
                raise RuntimeError(f"{variant.name} engine worker did not start")

    def backends(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench-engine' "
            "AND datname = current_database()"
        ).fetchall()
        return [int(p) for (p,) in rows]

    def cpu(self) -> float:
        own = sum(proc_cpu(p.pid) for p in self.procs)
        return own + sum(proc_cpu(p) for p in self.backends())

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.communicate(timeout=60)


def drain_current(settings: Settings) -> None:
    """Absorb the warm-up wave with the current engine (not measured)."""
    run_worker(ROOT, settings, "drain")


def follow_wave(
    conn: Conn, sample: list[tuple[str, int]], wave: int, commits: list[float], cap_s: float
) -> tuple[list[float], float, bool]:
    """Poll until the marks are gone (or cap_s): freshness of the sampled
    readings, the end time, and whether the engine absorbed the whole wave."""
    chunk_of = {m: commits[i // CHUNK] for m, i in sample}
    target = {m: reading_ts(wave, i) for m, i in sample}
    seen: dict[str, float] = {}
    ids = [m for m, _ in sample]
    deadline = time.time() + cap_s
    while True:
        now = time.time()
        rows = conn.execute(
            "SELECT meter_id, computed_until FROM meter_engine_state "
            "WHERE meter_id = ANY(%s::text[])",
            (ids,),
        ).fetchall()
        for meter, until in rows:
            if meter not in seen and until >= target[meter]:
                seen[meter] = now
        if len(seen) == len(sample) and scalar(conn, "SELECT count(*) FROM dirty_meter_hours") == 0:
            return [seen[m] - chunk_of[m] for m in seen], now, True
        if now > deadline:
            return [seen[m] - chunk_of[m] for m in seen], now, False
        time.sleep(0.05)


def run_variant(
    variant: Variant,
    settings: Settings,
    conn: Conn,
    meters: list[str],
    waves: int,
    cap_s: float,
    engines: int = 1,
) -> dict[str, Any]:
    conn.execute(f"TRUNCATE {ENGINE_TABLES}")
    writer = BatchWriter(settings.libpq_url)
    try:
        write_wave(writer, meters, 0)
        drain_current(settings)
        step = max(1, len(meters) // SAMPLE)
        sample = [(meters[i], i) for i in range(0, len(meters), step)]
        worker = Worker(variant, settings, conn, engines)
        freshness: list[float] = []
        absorbs: list[float] = []
        projected = False
        cpu0 = worker.cpu()
        try:
            for wave in range(1, waves + 1):
                started, commits = write_wave(writer, meters, wave)
                fresh, ended, complete = follow_wave(conn, sample, wave, commits, cap_s)
                freshness += fresh
                share = len(fresh) / len(sample)
                absorbs.append((ended - started) / (share if share else 1e-9))
                if not complete:
                    projected = True
                    break
            cpu = worker.cpu() - cpu0
        finally:
            worker.stop()
    finally:
        writer.close()
    meter_minutes = len(meters) * len(absorbs)
    absorb = max(absorbs)
    freshness.sort()
    return {
        "meters": len(meters),
        "engines": engines,
        "waves": len(absorbs),
        "absorb_s": absorbs,
        "keep_up_ratio": 60.0 / absorb,
        "projected": projected,
        "freshness_p50_s": pct(freshness, 0.5) if freshness else None,
        "freshness_p99_s": pct(freshness, 0.99) if freshness else None,
        "freshness_samples": len(freshness),
        "engine_cpu_s": cpu,
        "cpu_s_per_1000_meter_minutes": cpu / meter_minutes * 1000 if meter_minutes else None,
    }


def run_scale(
    settings: Settings,
    conn: Conn,
    sizes: list[int],
    variants: list[Variant],
    waves: int,
    cap_s: float,
    engines: int = 1,
) -> dict[str, Any]:
    """Every N for every variant, smallest N first; ratios against the first variant.
    With `engines` > 1 the current tree is also measured with that many engine
    processes (as `current x2`, say)."""
    all_meters = create_meters(conn, max(sizes))
    conn.execute("ANALYZE meters")
    out: dict[str, Any] = {
        "sizes": sizes,
        "waves": waves,
        "cap_s": cap_s,
        "engines": engines,
        "runs": {},
    }
    for n in sizes:
        runs = {
            v.name: run_variant(v, settings, conn, all_meters[:n], waves, cap_s) for v in variants
        }
        if engines > 1:
            current = variants[-1]
            runs[f"{current.name} x{engines}"] = run_variant(
                current, settings, conn, all_meters[:n], waves, cap_s, engines
            )
        out["runs"][str(n)] = runs
    return out


def scale_rows(table: Any, f: dict[str, Any], goal_keep_up: float, goal_p99_s: float) -> None:
    """Report rows: per N and variant, keep-up, freshness, CPU; ratios to the first."""
    for n, runs in f["runs"].items():
        base_name, first = next(iter(runs.items()))
        for name, r in runs.items():
            gain = r["keep_up_ratio"] / first["keep_up_ratio"]
            ratio = f"; x{gain:.1f} keep-up vs {base_name}" if r is not first else ""
            ok = r["keep_up_ratio"] >= goal_keep_up and (r["freshness_p99_s"] or 1e9) <= goal_p99_s
            verdict = "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
            table.add_row(
                "3",
                f"Scale {int(n):,} meters, {name}",
                f"keep-up {r['keep_up_ratio']:.2f}" + (" (projected)" if r["projected"] else ""),
                f"freshness p50 {_s(r['freshness_p50_s'])} / p99 {_s(r['freshness_p99_s'])}; "
                f"{_num(r['cpu_s_per_1000_meter_minutes'], 2)} CPU s per 1,000 meter-minutes; "
                f"absorb {', '.join(f'{a:.1f}' for a in r['absorb_s'])} s{ratio}; {verdict}",
            )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def remark_all(conn: Conn) -> int:
    """Everything the engine derived emptied and every meter-hour with readings
    marked, as a rebuild marks them: the marks made."""
    conn.execute(
        "TRUNCATE hourly_emissions, dirty_meter_hours, data_quality_events, enterprise_hourly, "
        "site_hourly, meter_engine_state, totals_versions"
    )
    return int(conn.execute(dirty_marks.MARK_ALL_READINGS_PSYCOPG).rowcount)


def drain_variant(
    variant: Variant, settings: Settings, conn: Conn, cap_s: float, engines: int = 1
) -> dict[str, Any]:
    """Everything the engine derived is emptied, every meter-hour with readings is
    marked (as a rebuild marks them) and the variant drains the queue in
    `worker.py drain`, in `engines` processes at once (sharing the queue as
    production engines do); stopped after cap_s. `seconds` is the slowest
    process's, from its first pass to the empty queue."""
    marks = remark_all(conn)
    procs = start_workers(variant, settings, "drain", engines)
    deadline = time.monotonic() + cap_s
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            if proc.returncode:
                raise RuntimeError(f"{variant.name} drain failed: {err.strip()[-500:]}")
            results.append(json.loads(out.splitlines()[-1]))
    except subprocess.TimeoutExpired:
        return {"dirty_marks": marks, "engines": engines, "seconds": None, "more_than_s": cap_s}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return {
        "dirty_marks": marks,
        "engines": engines,
        "seconds": max(r["seconds"] for r in results),
        "hour_rows_written": sum(r["hour_rows_written"] for r in results),
        "cpu_s": sum(r["cpu_s"] for r in results),
    }
