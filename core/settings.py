"""The one settings object. Every knob is an `EMISSIONS_*` environment variable.

Defaults point at the local instances that `scripts/setup.sh` starts, so a
developer needs no configuration at all. Secrets are `SecretStr`; when not given
by environment they are read from the generated files in the state directory
(outside the repository). In production mode a missing secret stops start-up.
"""

from __future__ import annotations

import math
from collections import Counter
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL

from core.broker.limits import DEFAULT_MAX_PAYLOAD_BYTES
from core.paths import default_state_dir, mqtt_password_file, secrets_dir


class Environment(StrEnum):
    development = "development"
    production = "production"


class SettingsError(RuntimeError):
    """Raised for configuration that cannot run; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EMISSIONS_", env_file=None, extra="ignore", validate_default=True
    )

    environment: Environment = Environment.development
    state_dir: Path = Field(default_factory=default_state_dir)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = False
    # How long a command waits at start for a store or broker that refuses
    # connections or is starting up; a wrong password or a missing database fails
    # at once (core/db.py, core/broker/login.py).
    startup_wait_s: float = Field(default=60.0, ge=0)

    # Store: the project's own PostgreSQL + TimescaleDB instance.
    db_host: str = "127.0.0.1"
    db_port: int = Field(default=55432, ge=1, le=65535)
    db_name: str = "emissions"
    db_user: str = "emissions"
    db_password: SecretStr | None = None
    db_pool_size: int = Field(default=5, ge=1)

    # Broker: the project's own Mosquitto instance.
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=11883, ge=1, le=65535)
    mqtt_username: str = "svc-ingest-1"
    mqtt_password: SecretStr | None = None
    mqtt_topic_prefix: str = Field(default="parks", pattern=r"^[^#+/][^#+]*[^#+/]$|^[^#+/]$")
    # 3.1.1 is the default: paho handles it 25-35 % faster than 5 (SPEC section 3).
    mqtt_protocol: Literal["3.1.1", "5"] = "3.1.1"
    mqtt_keepalive_s: int = Field(default=30, ge=5)

    # Ingest: one process per partition of sites (empty: every site).
    ingest_sites: Annotated[list[str], NoDecode] = []
    ingest_batch_readings: int = Field(default=5000, ge=1)
    ingest_batch_deadline_ms: int = Field(default=200, ge=1)
    # Unacked messages the broker may have in flight to us (MQTT 5 receive maximum;
    # keep at most the broker's max_inflight_messages for 3.1.1). Bounds memory.
    ingest_max_inflight: int = Field(default=10_000, ge=1, le=65_535)
    ingest_max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, ge=64, le=64 * DEFAULT_MAX_PAYLOAD_BYTES
    )
    ingest_max_future_skew_s: int = Field(default=300, ge=0)
    ingest_meter_refresh_s: float = Field(default=30.0, gt=0)
    ingest_health_port: int = Field(default=9101, ge=0, le=65535)
    # Quarantine bounds (ingest/quarantine.py, docs/ingest.md): payloads kept up to a
    # cap; per publishing topic a burst of rows, then a rate (the rest are counted in
    # quarantine_drops); rows and drop counts kept this many days.
    ingest_quarantine_max_payload_bytes: int = Field(default=64 * 1024, ge=0)
    ingest_quarantine_burst: int = Field(default=1000, ge=1)
    ingest_quarantine_per_minute: float = Field(default=600.0, gt=0)
    ingest_quarantine_retention_days: int = Field(default=90, ge=1)

    engine_health_port: int = Field(default=9102, ge=0, le=65535)
    # Worker threads of one engine process (docs/engine.md): a worker waits on the
    # store about half of the time, so two keep a 2-core machine's cores busy.
    engine_workers: int = Field(default=2, ge=1, le=16)

    # Where component processes serve /healthz and /metrics.
    metrics_host: str = "127.0.0.1"

    # Park configuration applied by `emissions config apply` and read by the simulator.
    park_config: Path = Path("config/park.yaml")

    # Simulator (`emissions simulate`, docs/simulator.md): defaults of its options.
    # It logs in as each enterprise's gateway with the passwords in the state dir.
    simulator_seed: int = 1
    simulator_interval_s: int = Field(default=60, ge=1, le=3600)  # counter readings
    simulator_jitter_s: int = Field(default=5, ge=0)  # +- on each reading's time
    simulator_batch_s: int = Field(default=60, ge=1, le=3600)  # gateway publish period
    # ... while simulating history (accelerated, load, a backfill): fewer, bigger batches
    simulator_catchup_batch_s: int = Field(default=600, ge=1, le=3600)
    simulator_window: int = Field(default=100, ge=1, le=10_000)  # unacked msgs per gateway

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    admin_api_key: SecretStr | None = None
    api_workers: int = Field(default=1, ge=1)
    # Caps per request (OWASP API4): hourly range, page size, inventory/summary spans.
    api_max_hourly_days: int = Field(default=366, ge=1)
    api_max_page_size: int = Field(default=1000, ge=1)
    # /readyz: how long the store and broker checks may take.
    api_ready_timeout_s: float = Field(default=2.0, gt=0)
    # Rendered hourly JSON per site/enterprise and UTC day, revalidated on every
    # request (api/hourly_cache.py); 0 turns it off.
    api_hourly_cache_mb: int = Field(default=128, ge=0)
    # Request bodies over this are refused (413) before they are read or the key is
    # checked; the largest body the API takes (a replay of 1,000 ids) is ~20 KB.
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Failed authentications per client address (api/throttle.py, per process):
    # a burst, then this many a minute; past it 429 with Retry-After.
    api_auth_failure_burst: int = Field(default=20, ge=1)
    api_auth_failures_per_minute: float = Field(default=10.0, gt=0)

    # Alerts (`emissions alerts run`, docs/alerts.md). Rules live in the park file;
    # these are the service's own knobs. The webhook signing secret comes from
    # EMISSIONS_ALERTS_WEBHOOK_SECRET or the state file secrets/alerts_webhook_secret.
    alerts_evaluation_interval_s: float = Field(default=60.0, gt=0)
    alerts_health_port: int = Field(default=9103, ge=0, le=65535)
    alerts_alertmanager_url: str | None = None
    alerts_webhook_secret: SecretStr | None = None
    alerts_webhook_timeout_s: float = Field(default=5.0, gt=0)
    alerts_retry_attempts: int = Field(default=3, ge=1)  # tries per delivery round
    alerts_retry_wait_s: float = Field(default=1.0, ge=0)  # first backoff, doubles
    alerts_delivery_rounds: int = Field(default=6, ge=1)  # rounds before dead letter
    alerts_round_backoff_s: float = Field(default=60.0, ge=0)  # doubles each round
    alerts_repeat_s: int = Field(default=86_400, ge=0)  # 0: never repeat a firing alert

    # Console (docs/console.md): session cookies are signed with
    # EMISSIONS_CONSOLE_SECRET_KEY or the state file secrets/console_secret_key.
    console_secret_key: SecretStr | None = None
    console_cookie_secure: bool = False  # set true behind HTTPS
    console_session_hours: float = Field(default=12.0, gt=0)

    @field_validator(
        "db_password",
        "mqtt_password",
        "admin_api_key",
        "alerts_webhook_secret",
        "console_secret_key",
        mode="before",
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        """Compose passes an optional secret that nobody set as "": treat it as unset,
        never as an empty key."""
        return None if value == "" else value

    @field_validator("admin_api_key")
    @classmethod
    def _strong_key_in_production(cls, value: SecretStr | None, info: ValidationInfo) -> object:
        """A guessable admin key would be the weakest door of the service."""
        if value is not None and info.data.get("environment") is Environment.production:
            weakness = key_weakness(value.get_secret_value())
            if weakness:
                hint = "generate one with `openssl rand -base64 32`"
                raise ValueError(f"{weakness} in production; {hint}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("ingest_sites", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # A secret may instead name a file (compose and Kubernetes secrets mount them):
    # EMISSIONS_DB_PASSWORD_FILE=/run/secrets/db_password. The variable wins.
    db_password_file: Path | None = None
    mqtt_password_file: Path | None = None
    admin_api_key_file: Path | None = None
    alerts_webhook_secret_file: Path | None = None
    console_secret_key_file: Path | None = None

    @model_validator(mode="after")
    def _load_secret_files(self) -> Self:
        """Fill unset secrets from their *_FILE, then from the generated files in the
        state directory."""
        for name in (
            "db_password",
            "mqtt_password",
            "admin_api_key",
            "alerts_webhook_secret",
            "console_secret_key",
        ):
            path: Path | None = getattr(self, f"{name}_file")
            if getattr(self, name) is None and path is not None:
                try:
                    value = path.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(
                        f"EMISSIONS_{name.upper()}_FILE: cannot read {path}: {exc.strerror}"
                    ) from None
                setattr(self, name, SecretStr(value) if value else None)
        if self.db_password is None:
            self.db_password = _read_secret(secrets_dir(self.state_dir) / "db_password")
        if self.mqtt_password is None:
            self.mqtt_password = _read_secret(
                mqtt_password_file(self.state_dir, self.mqtt_username)
            )
        return self

    def require_secrets(self, *names: str) -> None:
        """Each component names the secrets it needs at start-up; in production a
        missing one stops it with the variable named, instead of failing later."""
        if self.environment is not Environment.production:
            return
        missing = [f"EMISSIONS_{n.upper()}" for n in names if getattr(self, n) is None]
        if missing:
            raise SettingsError("production mode needs these secrets set: " + ", ".join(missing))

    @property
    def libpq_url(self) -> str:
        """The same store as a libpq URI, for psycopg used directly (ingest's COPY path)."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL for psycopg 3; the password is rendered only here."""
        password = self.db_password.get_secret_value() if self.db_password else ""
        return URL.create(
            "postgresql+psycopg",
            username=self.db_user,
            password=password or None,
            host=self.db_host,
            port=self.db_port,
            database=self.db_name,
        ).render_as_string(hide_password=False)


MIN_KEY_CHARS = 32
MIN_KEY_BITS = 100.0


def estimated_bits(token: str) -> float:
    """Shannon estimate of a token's entropy: its length times the entropy of its own
    character distribution. It catches repeats and tiny alphabets ("aaaa...",
    "abab..."); a random token of 32+ characters scores 118 bits (hex) and more."""
    if not token:
        return 0.0
    counts = Counter(token)
    n = len(token)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values())


def key_weakness(token: str) -> str | None:
    """Why an API key is too weak to accept, or None when it is strong enough."""
    if len(token) < MIN_KEY_CHARS:
        return f"an API key needs at least {MIN_KEY_CHARS} characters, this one has {len(token)}"
    bits = estimated_bits(token)
    if bits < MIN_KEY_BITS:
        return f"an API key needs about {MIN_KEY_BITS:.0f} bits of entropy, this one has {bits:.0f}"
    return None


def _read_secret(path: Path) -> SecretStr | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, PermissionError):
        return None
    return SecretStr(text) if text else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
