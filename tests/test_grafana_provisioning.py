"""compose.yaml wires Grafana and Prometheus to the shipped files, hands Grafana every
variable its provisioning reads, and runs each service with a command the CLI has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from cli.main import app
from tests.grafana_support import DASHBOARDS, GRAFANA
from tests.kit.paths import ROOT

COMPOSE = ROOT / "compose.yaml"


def services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def mounts(service: str) -> dict[str, Path]:
    """Container path -> repository path of the service's bind mounts."""
    found = {}
    for volume in services()[service]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def test_grafana_reads_the_provisioning_and_dashboards() -> None:
    bound = mounts("grafana")
    assert bound["/etc/grafana/provisioning"] == ROOT / "grafana" / "provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/emissions.yaml").read_text())
    (entry,) = provider["providers"]
    assert bound[entry["options"]["path"]] == DASHBOARDS
    home = services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DASHBOARDS / Path(home).name).is_file()


def test_grafana_gets_every_variable_its_provisioning_reads() -> None:
    environment = services()["grafana"]["environment"]
    text = "\n".join(p.read_text() for p in (GRAFANA / "provisioning").rglob("*.yaml"))
    used = set(re.findall(r"\$\{(\w+)\}", text)) | set(re.findall(r"\$__env\{(\w+)\}", text))
    assert used, "the data sources take their settings from the environment"
    # The container's command exports the password from its secret file, so it
    # is in Grafana's process environment but never in compose's.
    (command,) = services()["grafana"]["command"]
    exported = set(re.findall(r"\b(\w+)=\"\$\$\(cat /run/secrets/(\w+)\)\"", command))
    assert exported == {("EMISSIONS_GRAFANA_DB_PASSWORD", "grafana_db_password")}
    assert "grafana_db_password" in services()["grafana"]["secrets"]
    assert command.endswith("exec /run.sh")
    assert used <= set(environment) | {"EMISSIONS_GRAFANA_DB_PASSWORD"}, used - set(environment)
    assert "EMISSIONS_GRAFANA_DB_PASSWORD" not in environment
    # The password only ever comes from the secret file, never from the provisioning.
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/emissions.yaml").read_text())
    pg = next(d for d in datasources["datasources"] if d["type"] == "grafana-postgresql-datasource")
    assert pg["secureJsonData"]["password"] == "${EMISSIONS_GRAFANA_DB_PASSWORD}"


def test_prometheus_reads_the_config_and_rules() -> None:
    bound = mounts("prometheus")
    assert bound["/etc/prometheus/prometheus.yml"] == ROOT / "docker/prometheus/prometheus.yml"
    assert bound["/etc/prometheus/rules"] == ROOT / "docker/prometheus/rules"
    command = services()["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command


@pytest.mark.parametrize(
    "service", ["broker-config", "migrate", "ingest", "engine", "api", "alerts", "simulator"]
)
def test_compose_commands_parse_with_the_cli(service: str) -> None:
    """Each container's `emissions ...` arguments resolve to a command of the CLI and
    parse with its options (click parses without running anything)."""
    spec = services()[service]
    args = list(spec["command"])
    if spec.get("entrypoint") == ["/bin/sh", "-c"]:
        args = shlex.split(args[0].split("&&")[0])[1:]  # "emissions db upgrade && ..."
    # Typer vendors its own click: tell groups by their sub-commands, not by class.
    command: Any = typer.main.get_command(app)
    context = command.make_context("emissions", list(args))
    while hasattr(command, "commands") and args:
        sub = command.get_command(context, args[0])
        assert sub is not None, f"{service}: no command {args[0]!r} in `emissions`"
        command, args = sub, args[1:]
        context = command.make_context(command.name or "", list(args), parent=context)
    assert not hasattr(command, "commands"), f"{service}: {spec['command']} names a group"
