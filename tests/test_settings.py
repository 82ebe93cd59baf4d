"""Settings: one prefix, secrets from files outside the repo, production refuses gaps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from core.paths import mqtt_password_file
from core.settings import Environment, Settings, SettingsError


def test_secrets_come_from_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db_password").write_text("s3cret\n")
    mqtt_password_file(tmp_path, "svc-ingest-1").parent.mkdir(parents=True)
    mqtt_password_file(tmp_path, "svc-ingest-1").write_text("mq\n")
    settings = Settings(state_dir=tmp_path)
    assert settings.db_password is not None
    assert settings.db_password.get_secret_value() == "s3cret"
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "mq"
    assert "s3cret" not in repr(settings)
    assert ":s3cret@" in settings.database_url


def test_environment_variables_use_one_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMISSIONS_DB_PORT", "6543")
    monkeypatch.setenv("EMISSIONS_MQTT_TOPIC_PREFIX", "hp/parks")
    settings = Settings()
    assert settings.db_port == 6543
    assert settings.mqtt_topic_prefix == "hp/parks"


def test_production_names_every_missing_secret(tmp_path: Path) -> None:
    settings = Settings(environment=Environment.production, state_dir=tmp_path)
    with pytest.raises(SettingsError) as info:
        settings.require_secrets("db_password", "mqtt_password", "admin_api_key")
    message = str(info.value)
    for name in ("EMISSIONS_DB_PASSWORD", "EMISSIONS_MQTT_PASSWORD", "EMISSIONS_ADMIN_API_KEY"):
        assert name in message
    Settings(state_dir=tmp_path).require_secrets("db_password")  # development: fine


def _db_command(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`emissions db <command>` with only these variables in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "db", command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_cli_reports_bad_settings_without_traceback(tmp_path: Path) -> None:
    result = _db_command("current", EMISSIONS_DB_PORT="not-a-port", PATH="/usr/bin:/bin")
    assert result.returncode == 2
    assert "EMISSIONS_DB_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    result = _db_command(
        "upgrade", EMISSIONS_ENVIRONMENT="production", EMISSIONS_STATE_DIR=str(tmp_path)
    )
    assert result.returncode == 2
    assert "EMISSIONS_DB_PASSWORD" in result.stderr


def test_a_secret_can_come_from_a_file(tmp_path: Path) -> None:
    """compose mounts secrets as files; the variable itself, when set, wins."""
    secret = tmp_path / "db_password"
    secret.write_text("from-the-file\n", encoding="utf-8")
    assert Settings(db_password_file=secret).db_password == SecretStr("from-the-file")
    assert Settings(db_password="direct", db_password_file=secret).db_password == SecretStr(
        "direct"
    )
    (tmp_path / "empty").write_text("", encoding="utf-8")
    webhook = Settings(alerts_webhook_secret_file=tmp_path / "empty")
    assert webhook.alerts_webhook_secret is None
    with pytest.raises(ValidationError, match="EMISSIONS_ADMIN_API_KEY_FILE: cannot read"):
        Settings(admin_api_key_file=tmp_path / "missing")
