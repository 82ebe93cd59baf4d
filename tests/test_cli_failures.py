"""A new user's first mistakes: each ends in one actionable line and a documented exit
code (2: change a setting, 1: something is unreachable), never a traceback.

Every case runs the installed `emissions` command against the real store and broker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from core import migrate
from core.settings import Settings
from tests.kit.broker import Broker, free_port

EMISSIONS = Path(sys.executable).parent / "emissions"
ROOT = Path(__file__).resolve().parent.parent
WRONG_PASSWORD = "not-the-password-7f3a"

# Every command that touches the store, with the arguments it needs.
STORE_COMMANDS = [
    ["db", "current"],
    ["db", "upgrade"],
    ["config", "apply", "config/park.yaml"],
    ["config", "show"],
    [
        "engine",
        "rebuild",
        "--site",
        "NCK",
        "--from",
        "2026-01-01T00:00Z",
        "--to",
        "2026-01-02T00:00Z",
    ],
    ["engine", "run", "--health-port", "0"],
    ["alerts", "evaluate"],
    ["alerts", "run", "--health-port", "0"],
    ["apikey", "list"],
    ["api", "--port", "0"],
    ["ingest"],
]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EMISSIONS), *args],
        env={**os.environ, "EMISSIONS_STARTUP_WAIT_S": "2", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the user reads; log lines (waiting...) may come before it."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def db_env(settings: Settings) -> dict[str, str]:
    assert settings.db_password is not None
    return {
        "EMISSIONS_DB_NAME": settings.db_name,
        "EMISSIONS_DB_PASSWORD": settings.db_password.get_secret_value(),
    }


@pytest.fixture(scope="module")
def migrated(database_factory: Callable[[], Settings]) -> Iterator[Settings]:
    settings = database_factory()
    engine = create_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    yield settings


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_wrong_password_fails_at_once_naming_the_store_never_the_password(
    args: list[str], migrated: Settings
) -> None:
    result = run(args, **{**db_env(migrated), "EMISSIONS_DB_PASSWORD": WRONG_PASSWORD})
    line = error_line(result)
    assert result.returncode == 2
    assert f"127.0.0.1:{migrated.db_port}" in line
    assert repr(migrated.db_name) in line and repr(migrated.db_user) in line
    assert "EMISSIONS_DB_PASSWORD" in line
    assert WRONG_PASSWORD not in result.stderr + result.stdout
    assert "waiting for the database" not in result.stderr  # authentication is not retried


def test_missing_database_fails_at_once(migrated: Settings) -> None:
    result = run(["config", "show"], **{**db_env(migrated), "EMISSIONS_DB_NAME": "no_such_db_x"})
    line = error_line(result)
    assert result.returncode == 2
    assert "'no_such_db_x'" in line and "does not exist" in line and "EMISSIONS_DB_NAME" in line
    assert "waiting for the database" not in result.stderr


def test_unreachable_store_is_waited_for_then_named(migrated: Settings) -> None:
    port = free_port()  # nothing listens there
    result = run(["db", "current"], **{**db_env(migrated), "EMISSIONS_DB_PORT": str(port)})
    line = error_line(result)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in line and "unreachable after 2 s" in line
    assert "Connection refused" in line
    assert "waiting for the database" in result.stderr


def test_unknown_host_names_the_setting(migrated: Settings) -> None:
    result = run(["db", "current"], **{**db_env(migrated), "EMISSIONS_DB_HOST": "db.invalid"})
    assert result.returncode == 2
    assert "EMISSIONS_DB_HOST" in error_line(result)


def test_unmigrated_database_says_to_upgrade(
    database_factory: Callable[[], Settings],
) -> None:
    result = run(["config", "show"], **db_env(database_factory()))
    line = error_line(result)
    assert result.returncode == 2
    assert "emissions db upgrade" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EMISSIONS_LOG_LEVEL", "LOUD"),
        ("EMISSIONS_DB_PORT", "five"),
        ("EMISSIONS_API_WORKERS", "0"),
        ("EMISSIONS_ENGINE_WORKERS", "17"),
    ],
)
def test_bad_setting_names_the_variable(variable: str, value: str) -> None:
    result = run(["db", "current"], **{variable: value})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"configuration error {variable}:"), lines


def test_log_level_accepts_any_case(migrated: Settings) -> None:
    result = run(["db", "current"], **db_env(migrated), EMISSIONS_LOG_LEVEL="warning")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.current_revision(create_engine(migrated.database_url))


@pytest.mark.parametrize(
    ("args", "variable"),
    [
        (["alerts", "run"], "EMISSIONS_ALERTS_HEALTH_PORT"),
        (["engine", "run"], "EMISSIONS_ENGINE_HEALTH_PORT"),
        (["ingest"], "EMISSIONS_INGEST_HEALTH_PORT"),
    ],
)
def test_health_port_in_use_names_the_setting(
    args: list[str], variable: str, migrated: Settings, broker: Broker
) -> None:
    user = {"alerts": "svc-alerts", "engine": "svc-engine", "ingest": "svc-ingest-1"}[args[0]]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(
            args,
            **db_env(migrated),
            **{variable: str(port)},
            EMISSIONS_MQTT_PORT=str(broker.port),
            EMISSIONS_MQTT_USERNAME=user,
            EMISSIONS_MQTT_PASSWORD=broker.password(user),
        )
    line = error_line(result)
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in line and variable in line


@pytest.mark.parametrize(
    ("args", "user"), [(["ingest"], "svc-ingest-1"), (["engine", "run"], "svc-engine")]
)
def test_broker_login_refused_fails_at_once(
    args: list[str], user: str, migrated: Settings, broker: Broker
) -> None:
    result = run(
        [*args, "--health-port", "0"] if args[0] == "engine" else args,
        **db_env(migrated),
        EMISSIONS_INGEST_HEALTH_PORT="0",
        EMISSIONS_MQTT_PORT=str(broker.port),
        EMISSIONS_MQTT_USERNAME=user,
        EMISSIONS_MQTT_PASSWORD=WRONG_PASSWORD,
    )
    line = error_line(result)
    assert result.returncode == 2
    assert f"127.0.0.1:{broker.port}" in line and repr(user) in line and "login refused" in line
    assert WRONG_PASSWORD not in result.stderr + result.stdout


def test_unreachable_broker_is_waited_for_then_named(migrated: Settings) -> None:
    port = free_port()
    result = run(
        ["ingest"],
        **db_env(migrated),
        EMISSIONS_INGEST_HEALTH_PORT="0",
        EMISSIONS_MQTT_PORT=str(port),
    )
    line = error_line(result)
    assert result.returncode == 1
    assert f"MQTT broker at 127.0.0.1:{port}" in line and "EMISSIONS_MQTT_PORT" in line
    assert "waiting for the broker" in result.stderr


def test_version_and_help_for_users() -> None:
    version = run(["--version"])
    assert version.returncode == 0
    assert version.stdout.startswith("emissions ") and version.stdout.split()[1][0].isdigit()
    for args in (["--help"], ["config", "--help"], ["engine", "replace-meter", "--help"]):
        text = run(args).stdout
        assert "SPEC" not in text
    # Piped help keeps long lines whole instead of wrapping them at 80 columns.
    piped = run(["simulate", "--help"]).stdout
    assert any(len(line) > 100 for line in piped.splitlines())
