"""A real Prometheus (Debian's) scraping the running components with the shipped
rules: every rule evaluates without error and none is pending or firing on a
healthy service, and every Service health panel's query runs and, where the
service exports the series, returns data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from core.park.models import Park
from core.settings import Settings
from tests.kit.broker import Broker, free_port
from tests.metrics_harness import http_get, running_components
from tests.test_prometheus_rules import RULES, dashboard_expressions

# Series that exist only once something happened: a live rate needs priced hours
# in the trailing hour, open alerts need an alert.
MAY_BE_EMPTY = {"Live CO2e rate", "Open alerts"}


class Prometheus:
    def __init__(self, config: Path, data: Path) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: scripts/setup.sh installs Debian's package"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address={self.base.removeprefix('http://')}",
                "--log.level=warn",
            ]
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        body = http_get(url)
        assert body is not None, url
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def wait_until(self, what: str, check: Any) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited"
            if http_get(self.base + "/-/ready") is not None and check():
                return
            time.sleep(0.5)
        raise TimeoutError(what)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def prometheus(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park, tmp_path: Path
) -> Iterator[Prometheus]:
    with running_components(park_db[0], broker, test_park) as urls:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": [url.removeprefix("http://")]}],
                }
                for job, url in urls.items()
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        server = Prometheus(tmp_path / "prometheus.yml", tmp_path / "data")
        try:
            jobs = set(urls)

            def all_up_twice() -> bool:
                result = server.api("query", query="count_over_time(up[1m]) >= 3 and up == 1")
                return {r["metric"]["job"] for r in result["result"]} == jobs

            server.wait_until("every component scraped", all_up_twice)
            yield server
        finally:
            server.stop()


def test_rules_and_dashboard_queries_on_a_real_prometheus(prometheus: Prometheus) -> None:
    def evaluated() -> bool:
        groups = prometheus.api("rules")["groups"]
        return all(
            rule.get("lastEvaluation", "").startswith("2") for g in groups for rule in g["rules"]
        )

    prometheus.wait_until("every rule evaluated", evaluated)
    for group in prometheus.api("rules")["groups"]:
        for rule in group["rules"]:
            assert rule["health"] == "ok", rule
    assert prometheus.api("alerts")["alerts"] == []  # nothing pending on a healthy service

    for title, expr in dashboard_expressions():
        query = re.sub(r"\$__(rate_)?interval", "10s", expr)
        result = prometheus.api("query", query=query)["result"]
        if title not in MAY_BE_EMPTY:
            assert result, f"{title}: {query} returned nothing"
