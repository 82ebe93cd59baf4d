"""Shared by every component's commands: settings loading that fails with one clear line."""

from __future__ import annotations

import os
from datetime import datetime

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from core.locations import format_location
from core.logs import configure_logging
from core.settings import Settings, SettingsError

err = Console(stderr=True)
out = Console()


def load_settings(*secrets: str, mqtt_user: str | None = None) -> Settings:
    """Settings or exit 2 with the variable named: never a traceback for a bad env.

    `secrets` names the secrets the command needs (checked in production mode);
    `mqtt_user` is the component's broker user unless EMISSIONS_MQTT_USERNAME says
    otherwise."""
    try:
        explicit = os.environ.get("EMISSIONS_MQTT_USERNAME")
        settings = Settings(mqtt_username=explicit or mqtt_user) if mqtt_user else Settings()
        settings.require_secrets(*secrets)
    except ValidationError as exc:
        for e in exc.errors(include_url=False):
            if e["loc"]:
                name = "EMISSIONS_" + format_location(tuple(e["loc"])).upper()
                message = f"{name}: {e['msg']}"
            else:  # a check across fields names its variable itself
                message = str(e["msg"]).removeprefix("Value error, ")
            _config_error(message)
        raise typer.Exit(2) from None
    except SettingsError as exc:
        _config_error(str(exc))
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _config_error(message: str) -> None:
    err.print(Text.assemble(("configuration error ", "red"), message), soft_wrap=True)


def parse_time_option(value: str, name: str) -> datetime:
    """An RFC 3339 option value; an offset is required (timestamps without one are
    ambiguous across the park's and the server's time zones)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not RFC 3339", param_hint=name) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{value!r} needs a UTC offset", param_hint=name)
    return parsed
