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
from api.throttle import AuthThrottle
from core.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pem_...`")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(request: Request) -> Iterator[Connection]:
    """One pooled connection per request and the API's one commit point: the request's
    changes commit together after the endpoint returned, and roll back together when
    it raised (an HTTP error included), so no route or helper commits on its own."""
    engine: Engine = request.app.state.engine
    with engine.connect() as conn:
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


# scope="function": the commit runs when the endpoint returns, before the response
# is sent, so a client never sees a success that did not commit.
Conn = Annotated[Connection, Depends(get_conn, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def unthrottled_client(request: Request) -> str:
    """The caller's address, or 429 when it is past its budget of failed
    authentications (api/throttle.py). Solved before the connection, so a
    throttled client costs no database work."""
    throttle: AuthThrottle = request.app.state.auth_throttle
    client = client_address(request)
    wait_s = throttle.retry_after_s(client)
    if wait_s:
        raise HTTPException(
            429,
            f"too many failed authentications from this address; retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    return client


def principal(
    client: Annotated[str, Depends(unthrottled_client)],
    request: Request,
    conn: Conn,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, or 401; every failure takes from the address's budget."""
    throttle: AuthThrottle = request.app.state.auth_throttle
    if credentials is None or credentials.scheme.lower() != "bearer":
        throttle.failed(client)
        raise unauthorized("an API key is required: Authorization: Bearer <key>")
    admin = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    found = authenticate(conn, credentials.credentials, admin)
    if found is None:
        throttle.failed(client)
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
    429: {"model": ErrorOut, "description": "Too many failed authentications; see Retry-After."},
    403: {"model": ErrorOut, "description": "The key's role may not do this."},
    404: {"model": ErrorOut, "description": "Unknown, or not visible to this key."},
    503: {"model": ErrorOut, "description": "The store is unavailable (or not migrated)."},
}
