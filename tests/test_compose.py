"""compose.yaml as an SRE reviews it: valid against the Compose specification, no
secret in any environment (files under /run/secrets instead), every service
limited in CPU and memory, and Grafana started only after the migration that
grants its read-only role."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
SECRET_NAME = re.compile(r"PASSWORD|API_KEY|SECRET(?!S_DIR)")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_secret_travels_as_an_environment_variable() -> None:
    data = compose()
    declared = data["secrets"]
    for name, spec in declared.items():
        assert spec["file"].startswith("${EMISSIONS_SECRETS_DIR:?"), name
        assert spec["file"].endswith(f"/{name}"), name
    for service, spec in data["services"].items():
        mounted = set(spec.get("secrets", []))
        assert mounted <= set(declared), service
        for variable, value in (spec.get("environment") or {}).items():
            if not SECRET_NAME.search(variable):
                continue
            assert variable.endswith(("_FILE", "__FILE")), f"{service}: {variable} holds a secret"
            secret = str(value).removeprefix("/run/secrets/")
            assert str(value) == f"/run/secrets/{secret}" and secret in mounted, (
                f"{service}: {variable}={value} is not one of its mounted secrets"
            )


def test_every_service_has_cpu_and_memory_limits() -> None:
    for service, spec in compose()["services"].items():
        limits = spec.get("deploy", {}).get("resources", {}).get("limits", {})
        assert float(limits.get("cpus", 0)) > 0, service
        assert re.fullmatch(r"\d+[MG]", str(limits.get("memory", ""))), service


def test_grafana_waits_for_the_migration_that_grants_its_role() -> None:
    depends = compose()["services"]["grafana"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
