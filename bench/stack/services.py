"""The project's services (`emissions ingest`, `emissions engine run`) as subprocesses
on the bench database and broker, watched through their health ports."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import ROOT
from bench.stack.broker import Broker
from bench.stack.processes import free_port, stop_process, wait_for_port
from core.settings import Settings

INGEST_USER, ENGINE_USER = "svc-ingest-1", "svc-engine"


class ServiceDiedError(RuntimeError):
    pass


@dataclass
class Service:
    """A service subprocess with a health port: /readyz says when it is ready,
    /metrics gives its own counters (those starting with `metric_prefix`); its
    output goes to `<workdir>/<name>.log`."""

    cmd: list[str]
    env: dict[str, str]
    health_port: int
    workdir: Path
    name: str = "ingestor"
    metric_prefix: str = "emissions_ingest_"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise ServiceDiedError(f"{self.name} exited ({code}); its log ends:\n{self.log_tail()}")

    def _get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status), resp.read().decode()

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with contextlib.suppress(OSError):
                # /readyz: for ingest, the broker granted its subscriptions.
                if self._get("/readyz")[0] == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def metrics(self) -> dict[str, float]:
        """The service's own metrics (emissions_ingest_* by default), label sets included."""
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in self._get("/metrics")[1].splitlines():
                if line.startswith(self.metric_prefix):
                    name, _, value = line.rpartition(" ")
                    with contextlib.suppress(ValueError):
                        out[name] = float(value)
        return out

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)


def service_env(settings: Settings, broker: Broker, user: str) -> dict[str, str]:
    """Environment of a service subprocess on the bench database and broker as `user`."""
    s = settings
    return {
        **os.environ,
        "EMISSIONS_DB_HOST": s.db_host,
        "EMISSIONS_DB_PORT": str(s.db_port),
        "EMISSIONS_DB_USER": s.db_user,
        "EMISSIONS_DB_NAME": s.db_name,
        "EMISSIONS_DB_PASSWORD": s.db_password.get_secret_value() if s.db_password else "",
        "EMISSIONS_MQTT_HOST": "127.0.0.1",
        "EMISSIONS_MQTT_PORT": str(broker.port),
        "EMISSIONS_MQTT_USERNAME": user,
        "EMISSIONS_MQTT_PASSWORD": broker.password(user),
        "EMISSIONS_STATE_DIR": str(broker.state_dir),
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }


def start_service(
    cmd: list[str], settings: Settings, broker: Broker, user: str, workdir: Path, name: str
) -> Service:
    """`emissions ingest` or `emissions engine run` on the bench database and broker,
    started and ready."""
    health_port = free_port()
    env = service_env(settings, broker, user)
    if name == "engine":
        cmd = [*cmd, "--health-port", str(health_port)]
        prefix = "emissions_engine_"
    else:
        env["EMISSIONS_INGEST_HEALTH_PORT"] = str(health_port)
        prefix = "emissions_ingest_"
    proc = Service(cmd, env, health_port, workdir, name=name, metric_prefix=prefix)
    proc.start()
    proc.wait_healthy()
    return proc


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the ingestor did in one run: outcome counts, mean batch size and commit time."""

    def d(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    batches = d("emissions_ingest_commit_duration_seconds_count")
    out = {
        "messages": d("emissions_ingest_messages_total"),
        "stored": d('emissions_ingest_readings_total{result="stored"}'),
        "duplicate": d('emissions_ingest_readings_total{result="duplicate"}'),
        "conflict": d('emissions_ingest_readings_total{result="conflict"}'),
        "quarantined": d('emissions_ingest_readings_total{result="quarantined"}'),
        "batches": batches,
        "db_errors": d("emissions_ingest_database_errors_total"),
    }
    if batches:
        out["mean_batch_readings"] = d("emissions_ingest_batch_readings_sum") / batches
        out["mean_commit_ms"] = 1000 * d("emissions_ingest_commit_duration_seconds_sum") / batches
    return out


def start_api(settings: Settings, env: dict[str, str], stack: contextlib.ExitStack) -> int:
    """`emissions api` (uvicorn, one worker) on the bench database, listening;
    returns its port. `env` adds to the environment (keys, secrets)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "emissions"), "api", "--port", str(port)],
        env={
            **os.environ,
            "EMISSIONS_DB_NAME": settings.db_name,
            "EMISSIONS_LOG_LEVEL": "WARNING",
            **env,
        },
        start_new_session=True,
    )
    stack.callback(stop_process, proc)
    wait_for_port(port, proc, timeout=90)
    return port
