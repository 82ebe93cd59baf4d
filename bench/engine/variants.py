"""The engines bench.engine measures, each in `bench/engine/worker.py` with its own
source tree first on PYTHONPATH: the current one, and a baseline export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings

WORKER = Path(__file__).with_name("worker.py")
# The worker reads the database URL (with its password) from this variable, not argv.
DB_URL_ENV = "BENCH_ENGINE_DB_URL"


@dataclass(frozen=True)
class Variant:
    """An engine to measure: a name and the source tree put first on PYTHONPATH."""

    name: str
    tree: Path


def worker_command(mode: str, *args: str) -> list[str]:
    """`-P`: the worker's own folder stays off sys.path, where bench/engine/ and its
    modules could shadow the tree under test."""
    return [sys.executable, "-P", str(WORKER), mode, "--db-url-env", DB_URL_ENV, *args]


def worker_env(tree: Path, settings: Settings) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), DB_URL_ENV: settings.database_url}


def run_worker(
    tree: Path, settings: Settings, mode: str, *args: str, timeout: float | None = None
) -> dict[str, Any]:
    """One worker run to its end; its JSON line (subprocess.TimeoutExpired after `timeout`)."""
    done = subprocess.run(
        worker_command(mode, *args),
        env=worker_env(tree, settings),
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def start_workers(
    variant: Variant, settings: Settings, mode: str, count: int
) -> list[subprocess.Popen[str]]:
    """`count` workers of one variant at once, sharing the engine's queue as
    production engines do; their JSON lines on stdout, errors on stderr."""
    return [
        subprocess.Popen(
            worker_command(mode),
            env=worker_env(variant.tree, settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
