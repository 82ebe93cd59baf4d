"""`emissions alerts run|evaluate`: the alert service's commands."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated

import typer

from core.cli_support import load_settings, out
from core.db import ready_engine
from core.runner import HealthPort, Worker, run_service

app = typer.Typer(help="Alert rules, alert state and notifications.", no_args_is_help=True)


@app.command("run")
def run(
    health_port: Annotated[
        int | None,
        typer.Option(help="Port of /healthz and /metrics (default: EMISSIONS_ALERTS_HEALTH_PORT)."),
    ] = None,
) -> None:
    """Evaluate the rules every EMISSIONS_ALERTS_EVALUATION_INTERVAL_S and notify changes."""
    # Imported here, not at module level: `emissions` imports every component's
    # commands, and each process should export only its own metrics.
    from alerts import service  # noqa: PLC0415
    from alerts.outbox import Notifier  # noqa: PLC0415

    settings = load_settings("db_password", "mqtt_password", mqtt_user="svc-alerts")
    notifier = Notifier(settings)
    engine = ready_engine(settings)
    health = HealthPort.chosen(settings, "alerts", health_port)
    run_service("alerts", Worker(partial(service.run, engine, notifier)), health)


@app.command("evaluate")
def evaluate_once(
    deliver: Annotated[bool, typer.Option(help="Also deliver the notifications.")] = True,
) -> None:
    """Evaluate every site once, now (cron-style use; safe next to a running service)."""
    from alerts.evaluate import evaluate  # noqa: PLC0415 (see run)
    from alerts.outbox import Notifier, drain  # noqa: PLC0415

    settings = load_settings("db_password", "mqtt_password", mqtt_user="svc-alerts")
    engine = ready_engine(settings)
    result = evaluate(engine, datetime.now(UTC), repeat_s=settings.alerts_repeat_s)
    out.print(
        f"{result.checks} checks: {result.fired} fired, {result.resolved} resolved, "
        f"{result.repeated} repeated"
    )
    if deliver:
        out.print(f"{drain(engine, Notifier(settings))} deliveries handled")
