"""`emissions user create|list|disable`: people who sign in to the console."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from api.auth import Role
from api.console.users import UserError, create_user, disable_user, list_users
from api.principals_cli import principals_transaction, print_principals, report_retired
from core.cli_support import err, load_settings, out
from core.db import make_engine

app = typer.Typer(help="Console users (argon2 password hashes).", no_args_is_help=True)


def _password(file: Path | None, generate: bool) -> str:
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            err.print(f"[red]cannot read --password-file {file}: {exc.strerror}[/red]")
            raise typer.Exit(1) from None
    if generate:
        return secrets.token_urlsafe(15)
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Sign-in name: A-Z a-z 0-9 _ . @ -")],
    role: Annotated[Role, typer.Option(help="admin, operator or tenant.")],
    enterprise: Annotated[
        str | None, typer.Option(help="The tenant's enterprise (tenant users only).")
    ] = None,
    language: Annotated[str, typer.Option(help="vi or en.")] = "vi",
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password from this file (first line).")
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate a password and print it once.")
    ] = False,
) -> None:
    """Create a user; without --password-file or --generate, asks for the password."""
    password = _password(password_file, generate)
    with principals_transaction(UserError) as conn:
        create_user(conn, username, password, role, enterprise, language)
    err.print(f"created {role.value} user {username!r}")
    if generate:
        err.print("the generated password is shown only now:")
        out.print(password, markup=False, highlight=False)


@app.command("list")
def list_() -> None:
    """Users with role, enterprise, language, creation and disabling (never hashes)."""
    with make_engine(load_settings("db_password")).connect() as conn:
        users = list_users(conn)
    print_principals(
        ("username", "role", "enterprise", "language", "created", "disabled"),
        [
            (u.username, u.role, u.enterprise_id, u.locale, u.created_at, u.disabled_at)
            for u in users
        ],
    )


@app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="The user's name.")]) -> None:
    """Disable a user at once: its open sessions end on their next request."""
    with principals_transaction() as conn:
        done = disable_user(conn, username)
    report_retired(done, "user", username, "disabled")
