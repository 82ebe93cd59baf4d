"""The service's components running as processes, as Prometheus sees them: ingest,
engine, alerts and API serving /metrics on their own ports, after ingest stored and
quarantined readings and the API answered requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from core.park.models import Park
from core.settings import Settings
from tests.ingest_harness import gateway, publish_all
from tests.kit.broker import Broker, free_port
from tests.kit.ingest import running_ingest
from tests.kit.paths import ROOT


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (http only)
            return str(resp.read().decode())
    except OSError:
        return None


class Component:
    """One `emissions ...` command in its own process, serving /metrics on a port."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", *argv], cwd=ROOT, env=env)

    def scrape(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = http_get(self.base + "/metrics")
            if body is not None:
                return body
            assert self.proc.poll() is None, f"{self.base}: exited with {self.proc.returncode}"
            time.sleep(0.2)
        raise TimeoutError(f"{self.base}/metrics never answered")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _env(settings: Settings, broker: Broker, user: str) -> dict[str, str]:
    password = settings.db_password.get_secret_value() if settings.db_password else ""
    return {
        **os.environ,
        "EMISSIONS_DB_NAME": settings.db_name,
        "EMISSIONS_DB_PASSWORD": password,
        "EMISSIONS_MQTT_PORT": str(broker.port),
        "EMISSIONS_MQTT_USERNAME": user,
        "EMISSIONS_MQTT_PASSWORD": broker.password(user),
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }


@contextmanager
def running_components(settings: Settings, broker: Broker, park: Park) -> Iterator[dict[str, str]]:
    """Yields each component's base URL (http://127.0.0.1:port), all of them serving."""
    with running_ingest(settings, broker) as ingest:
        ports = {name: free_port() for name in ("engine", "alerts", "api")}
        others = {
            "engine": Component(
                ["engine", "run", "--health-port", str(ports["engine"])],
                _env(settings, broker, "svc-engine"),
                ports["engine"],
            ),
            "alerts": Component(
                ["alerts", "run", "--health-port", str(ports["alerts"])],
                _env(settings, broker, "svc-alerts"),
                ports["alerts"],
            ),
            "api": Component(
                ["api", "--port", str(ports["api"])],
                _env(settings, broker, "svc-viewer"),
                ports["api"],
            ),
        }
        try:
            gw, meters = gateway(park)
            now = int(datetime.now(UTC).timestamp())
            readings = [{"meter": m, "ts": now - 60, "value": 10.0} for m in meters]
            readings.append({"meter": meters[0], "ts": now - 30, "value": -1.0})  # quarantined
            payload = json.dumps({"readings": readings}).encode()
            publish_all(broker, gw, [(f"parks/NCK/gateways/{gw}", payload)])
            deadline = time.monotonic() + 30
            while 'result="stored"' not in ingest.metrics() and time.monotonic() < deadline:
                time.sleep(0.2)
            for component in others.values():
                component.scrape()
            api = others["api"].base
            http_get(api + "/healthz")
            http_get(api + "/v1/meters/NCK-PARK-E-01")  # a templated route, whatever the answer
            yield {
                "ingest": f"http://127.0.0.1:{ingest.health_port}",
                **{name: c.base for name, c in others.items()},
            }
        finally:
            for component in others.values():
                component.stop()
