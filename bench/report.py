"""What the benchmarks share to run their steps and report them: the console, the
step runner, number formatting, the environment of a run, and the one `main` of
the benchmarks that write `bench/results/<name>-<stamp>.json` themselves."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import ROOT
from bench.stack.database import db_connect, scalar
from core.logs import configure_logging
from core.settings import Settings

console = Console()
Step = tuple[str, Callable[[], dict[str, Any]]]
VERIFIED = {True: "[green]verified[/green]", False: "[red]NOT VERIFIED[/red]"}


def pct(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def ok(flag: object) -> str:
    return "[green]exact[/green]" if flag else "[red]MISMATCH[/red]"


def finite(value: Any) -> Any:
    """The results with NaN and infinities as null: the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def timings_table(
    headers: Sequence[str],
    results: dict[str, dict[str, Any]],
    keys: Sequence[str],
    goals: dict[str, str],
) -> Table:
    """One row per case: its name, `keys` of its figures (counts with thousands
    separators, times to 0.1 ms) and its goal, if it has one."""
    table = Table(*headers, "goal")
    for name, r in results.items():
        cells = [f"{r[k]:,}" if isinstance(r[k], int) else f"{r[k]:.1f}" for k in keys]
        table.add_row(name, *cells, goals.get(name, ""))
    return table


def selected(only: str | None, steps: Sequence[str]) -> set[str]:
    """The steps an `--only a,b` option selects (all without it)."""
    chosen = set(only.split(",")) if only else set(steps)
    if unknown := chosen - set(steps):
        raise SystemExit(f"--only: unknown step(s) {sorted(unknown)}; steps: {tuple(steps)}")
    return chosen


def new_results(name: str, quick: bool, sizes: Any, **extra: Any) -> dict[str, Any]:
    """The results document of a run, its `figures` still empty."""
    return {
        "benchmark": name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "sizes": asdict(sizes),
        **extra,
        "figures": {},
    }


def run_steps(
    steps: Sequence[Step],
    figures: dict[str, Any],
    only: set[str],
    fatal: tuple[type[Exception], ...] = (),
) -> None:
    """Each selected step in turn; a failure is recorded as the step's figures and
    the next step runs, unless it is one of `fatal`."""
    for name, fn in steps:
        if name not in only:
            continue
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {name} ...", end=" ")
        t0 = time.monotonic()
        try:
            figures[name] = fn()
        except fatal:
            raise
        except Exception as exc:
            figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
            console.print(f"[red]failed[/red]: {figures[name]['error']}")
            continue
        console.print(f"[green]done[/green] in {time.monotonic() - t0:.1f} s")


def environment(settings: Settings) -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    def run(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return "?"
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if done.stdout or done.stderr
            else "?"
        )

    with db_connect(settings) as conn:
        server = str(scalar(conn, "SHOW server_version"))
        tsdb = str(scalar(conn, "SELECT extversion FROM pg_extension WHERE extname='timescaledb'"))
        sync = str(scalar(conn, "SHOW synchronous_commit"))
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.splitlines()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "paho_mqtt": version("paho-mqtt"),
        "psycopg": version("psycopg"),
        "postgresql": server,
        "timescaledb": tsdb,
        "synchronous_commit": sync,
        "mosquitto": run(["mosquitto", "-h"]),
        "git_commit": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "git_changed_files": [line[3:] for line in changed],
    }


def write_results(stem: str, document: dict[str, Any]) -> Path:
    """`bench/results/<stem>-<UTC time>.json` (git-ignored), for comparison runs."""
    out = ROOT / "bench" / "results" / f"{stem}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_main(
    name: str,
    args: argparse.Namespace,
    run_all: Callable[[str, contextlib.ExitStack], dict[str, Any]],
    tables: Callable[[dict[str, Any]], list[Table]],
    missed_goals: Callable[[dict[str, Any]], list[str]] | None = None,
) -> int:
    """Run `run_all` (each piece of the set-up registers its clean-up on the stack,
    which is closed also on Ctrl-C and SIGTERM), print the tables, write
    `<results-dir>/<name>-<stamp>.json`. Exit status 1 when a step failed or did
    not verify, or a goal was missed; 130 when interrupted."""
    configure_logging("WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    title = f"{name[0].upper()}{name[1:]} benchmark"
    console.print(f"[bold]{title}[/bold] ({'quick' if args.quick else 'full'})")
    stack = contextlib.ExitStack()
    try:
        started = time.monotonic()
        results = run_all(stamp, stack)
        results["total_seconds"] = time.monotonic() - started
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: cleaned up[/yellow]")
        return 130
    finally:
        # Clean-up must not be cut short by a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    figures = results["figures"]
    for table in tables(results):
        console.print(table)
    missed = missed_goals(figures) if missed_goals is not None else []
    if missed_goals is not None:
        results["missed_goals"] = missed
    path = args.results_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(finite(results), indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"Results: {path} (total {results['total_seconds']:.0f} s)")
    for goal in missed:
        console.print(f"[red]missed goal[/red]: {goal}")
    failed = [k for k, v in figures.items() if "error" in v or v.get("verified") is False]
    return 1 if failed or missed else 0
