"""`emissions ingest`: the MQTT to TimescaleDB ingestor."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli_support import load_settings

app = typer.Typer()


@app.command("ingest")
def ingest(
    sites: Annotated[
        str | None,
        typer.Option(help="Comma-separated sites this process ingests (default: all)."),
    ] = None,
) -> None:
    """Ingest meter readings from MQTT into the store, exactly once per (meter, ts).

    Run several processes with different --sites and EMISSIONS_MQTT_USERNAME
    (svc-ingest-1 .. svc-ingest-4) to split the topic space.
    """
    # Imported here, not at module level: `emissions` imports every component's
    # commands, and each process should export only its own metrics.
    from ingest import service  # noqa: PLC0415

    settings = load_settings("db_password", "mqtt_password")
    if sites is not None:
        settings = settings.model_copy(
            update={"ingest_sites": [s.strip() for s in sites.split(",") if s.strip()]}
        )
    service.run(settings)
