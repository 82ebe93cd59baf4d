"""Request dependencies: settings, one database connection per request, the caller.

Every endpoint under /v1 depends on `principal`: no key or an unknown or revoked key
answers 401 before any other work. Errors use FastAPI's shapes, so the OpenAPI
document describes every answer: `{"detail": "..."}` for 4xx, and for 422 the
validation error list (raised through `invalid`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine

from api.auth import Principal, Role, authenticate
from api.schemas import ErrorOut
from core.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pem_...`")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(request: Request) -> Iterator[Connection]:
    """One pooled connection per request; whatever was not committed is rolled back."""
    engine: Engine = request.app.state.engine
    with engine.connect() as conn:
        yield conn


Conn = Annotated[Connection, Depends(get_conn)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def principal(
    conn: Conn,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("an API key is required: Authorization: Bearer <key>")
    admin = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    found = authenticate(conn, credentials.credentials, admin)
    if found is None:
        raise unauthorized("unknown or revoked API key")
    return found


Caller = Annotated[Principal, Depends(principal)]


def require_role(caller: Principal, *roles: Role) -> None:
    if caller.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise HTTPException(403, f"this needs an {allowed} key")


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")


def invalid(field: str, message: str, location: str = "query") -> NoReturn:
    """A 422 in the same shape as FastAPI's own parameter errors."""
    raise RequestValidationError(
        [{"loc": (location, field), "msg": message, "type": "value_error"}]
    )


# Documented on every authenticated route, so clients and schemathesis know them.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or an unknown or revoked one."},
    403: {"model": ErrorOut, "description": "The key's role may not do this."},
    404: {"model": ErrorOut, "description": "Unknown, or not visible to this key."},
    503: {"model": ErrorOut, "description": "The store is unavailable (or not migrated)."},
}
