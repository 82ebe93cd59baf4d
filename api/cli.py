"""`emissions api` (serve the HTTP API) and `emissions apikey create|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from api.auth import KeyError_, Role, create_key, list_keys, revoke_key
from api.principals_cli import principals_transaction, print_principals, report_retired
from core.cli_support import err, load_settings, out
from core.db import make_engine, wait_for_database

keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Default: EMISSIONS_API_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: EMISSIONS_API_PORT.")] = None,
) -> None:
    """Serve the HTTP API with uvicorn (OpenAPI docs at /docs)."""
    settings = load_settings("db_password")
    engine = make_engine(settings)
    wait_for_database(engine, settings.startup_wait_s)
    engine.dispose()
    uvicorn.run(
        "api.main:app",
        factory=False,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
        log_config=None,
    )


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A unique name, e.g. the client's.")],
    role: Annotated[Role, typer.Option(help="admin, operator or tenant.")],
    enterprise: Annotated[
        str | None, typer.Option(help="The tenant's enterprise (tenant keys only).")
    ] = None,
) -> None:
    """Create a key and print its token once; only its SHA-256 digest is stored."""
    with principals_transaction(KeyError_) as conn:
        token = create_key(conn, name, role, enterprise)
    err.print(f"created {role.value} key {name!r}; the token is shown only now:")
    out.print(token, markup=False, highlight=False)


@keys_app.command("list")
def list_() -> None:
    """Keys with role, enterprise, creation, last use and revocation (never tokens)."""
    with make_engine(load_settings("db_password")).connect() as conn:
        keys = list_keys(conn)
    print_principals(
        ("name", "role", "enterprise", "created", "last used", "revoked"),
        [
            (k.name, k.role, k.enterprise_id, k.created_at, k.last_used_at, k.revoked_at)
            for k in keys
        ],
    )


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key at once: its next request answers 401."""
    with principals_transaction() as conn:
        done = revoke_key(conn, name)
    report_retired(done, "key", name, "revoked")
