"""The console's request plumbing: the signed-in user, the language, rendering.

A page handler asks for `Viewer` (the signed-in user; anyone else is sent to the
sign-in page) and renders with `render`, which adds what every page needs: the
user, the language switcher, the CSRF token of the forms and the site menu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, text
from starlette.exceptions import HTTPException

from api.console.i18n import environment, pick_locale
from api.console.session import Cookies
from api.console.users import User, active_user
from api.deps import Conn
from api.params import EnterpriseQ, SiteQ
from api.scope import Scope, resolve

LANG_COOKIE = "pem_lang"


class SignInRequired(Exception):
    """No valid session: the handler answers with a redirect to the sign-in page."""


def cookies(request: Request) -> Cookies:
    found: Cookies = request.app.state.console_cookies
    return found


def viewer(request: Request, conn: Conn) -> User:
    user_id = cookies(request).user_id(request)
    user = active_user(conn, user_id) if user_id is not None else None
    if user is None:
        raise SignInRequired
    request.state.user = user
    return user


Viewer = Annotated[User, Depends(viewer)]


def viewer_scope(conn: Conn, user: Viewer, site: SiteQ, enterprise: EnterpriseQ = None) -> Scope:
    """What the signed-in user may see of `site` (and `enterprise`), as the API
    resolves it for a key: outside it, 404."""
    return resolve(conn, user.principal, site, enterprise)


ViewerScope = Annotated[Scope, Depends(viewer_scope)]


def request_locale(request: Request) -> str:
    user: User | None = getattr(request.state, "user", None)
    if user is not None:
        return user.locale
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen:
        return pick_locale(chosen)
    accept = request.headers.get("accept-language", "")
    return "en" if accept.lower().startswith("en") else "vi"


@dataclass(frozen=True)
class SiteRef:
    id: str
    name: str
    timezone: str


def visible_sites(conn: Connection, user: User | None) -> list[SiteRef]:
    """Every active site, or a tenant's one site."""
    rows = conn.execute(
        text(
            "SELECT s.id, s.name, s.timezone FROM sites s WHERE s.active AND "
            "(CAST(:e AS text) IS NULL OR s.id = "
            "(SELECT site_id FROM enterprises WHERE id = :e)) ORDER BY s.id"
        ),
        {"e": user.enterprise_id if user else None},
    ).all()
    return [SiteRef(r.id, r.name, r.timezone) for r in rows]


def render(
    request: Request,
    conn: Connection | None,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> HTMLResponse:
    locale = request_locale(request)
    user: User | None = getattr(request.state, "user", None)
    jar = cookies(request)
    page = (
        environment(locale)
        .get_template(template)
        .render(
            request=request,
            user=user,
            sites=visible_sites(conn, user) if conn is not None and user is not None else [],
            csrf=jar.csrf_token(request),
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(page, status_code=status)
    jar.attach_csrf(request, response)
    return response


def error_page(request: Request, exc: HTTPException) -> HTMLResponse:
    """4xx of a console path as a page (in the visitor's language), not JSON."""
    return render(
        request,
        None,
        "error.html",
        {"status": exc.status_code, "detail": str(exc.detail)},
        status=exc.status_code,
    )
