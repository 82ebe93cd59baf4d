"""The shipped Prometheus configuration: valid (promtool check), every alerting rule
unit-tested (promtool test rules), every expression of the rules and of the
Service health dashboard naming metrics the services really export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import alerts.metrics
import api.metrics
import engine.metrics
import ingest.metrics
from tests.grafana_support import PROM_UID, dashboards, panels

ROOT = Path(__file__).resolve().parent.parent
PROM_DIR = ROOT / "docker" / "prometheus"
RULES = PROM_DIR / "rules" / "emissions.yml"
RULE_TESTS = PROM_DIR / "rules" / "emissions_test.yml"
METRIC = re.compile(r"\b(emissions_[a-z0-9_]+|up)\b")
MODULES = (ingest.metrics, engine.metrics, alerts.metrics, api.metrics)


def promtool(*args: str, cwd: Path = PROM_DIR) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: scripts/setup.sh installs Debian's prometheus package"
    return subprocess.run(
        [tool, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def exported_names() -> set[str]:
    """Sample names the services' metric modules export (imported above)."""
    assert MODULES
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    names = {"up"}
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, [""]):
            names.add(family.name + suffix)
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    names = {rule["alert"] for rule in alert_rules()}
    assert {c["alertname"] for c in cases} == names
    for name in names:
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name} is never shown firing"
        assert any(not c["exp_alerts"] for c in mine), f"{name} is never shown quiet"
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


SERVICE_PORTS = {"ingest": 9101, "engine": 9102, "alerts": 9103, "api": 8000}


@pytest.mark.parametrize(
    ("config_file", "host"), [("prometheus.yml", None), ("prometheus-local.yml", "127.0.0.1")]
)
def test_scrape_config_is_valid_and_covers_every_service(
    tmp_path: Path, config_file: str, host: str | None
) -> None:
    """compose.yaml's (services by name) and the local demo's (127.0.0.1)."""
    config = yaml.safe_load((PROM_DIR / config_file).read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for job, port in SERVICE_PORTS.items():
        assert targets[job] == f"{host or job}:{port}"
    rules = "/etc/prometheus/rules/emissions.yml" if host is None else "rules/emissions.yml"
    assert config["rule_files"] == [rules]
    # Re-rooted here so promtool can follow the container's paths.
    shutil.copytree(PROM_DIR / "rules", tmp_path / "rules")
    config["rule_files"] = [str(tmp_path / "rules" / "emissions.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for board in dashboards().values():
        for panel in panels(board):
            for target in panel["targets"]:
                if target["datasource"]["uid"] == PROM_UID:
                    found.append((panel["title"], target["expr"]))
    return found


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """promtool parses each Grafana expression as a recording rule, with Grafana's
    interval variables set as Grafana would."""
    exprs = dashboard_expressions()
    assert exprs
    rules = [
        {"record": f"dashboard:expr_{n}", "expr": re.sub(r"\$__(rate_)?interval", "1m", expr)}
        for n, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_expressions_name_exported_metrics(source: str) -> None:
    if source == "rules":
        exprs = [(rule["alert"], rule["expr"]) for rule in alert_rules()]
    else:
        exprs = dashboard_expressions()
    known = exported_names()
    for where, expr in exprs:
        for name in METRIC.findall(expr):
            assert name in known, f"{where}: {name} is not exported by any service"


OWNER = {"ingest": "ingest", "engine": "engine", "live": "engine", "api": "api", "alerts": "alerts"}
SELECTOR = re.compile(r"\b(emissions_([a-z]+)_[a-z0-9_]*)(\{[^}]*\})?")


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_expressions_select_the_owning_job(source: str) -> None:
    """Every process exports every component's families (the ones it does not own at
    0): an expression must read a metric from the job that owns it, or a last-pass
    timestamp of 0 on another job reads as stale since 1970."""
    if source == "rules":
        exprs = [(rule["alert"], rule["expr"]) for rule in alert_rules()]
    else:
        exprs = dashboard_expressions()
    for where, expr in exprs:
        for name, component, selector in SELECTOR.findall(expr):
            job = OWNER[component]
            assert f'job="{job}"' in selector, f'{where}: {name} without job="{job}"'


def test_every_alert_links_an_existing_runbook_section() -> None:
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        path, _, anchor = url.partition("#")
        assert path == "docs/runbooks.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in headings, rule["alert"]
