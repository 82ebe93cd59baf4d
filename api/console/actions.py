"""The console's forms (POST, each checked for its CSRF token) and downloads.

Each state change goes through the function the API or the services use for it:
`alerts.state.acknowledge` (which writes the outbox row, so the change reaches the
MQTT alert topic and webhooks), `engine.marks.record_replacement` and the park
loader's factor publication, `ingest.replay.replay_quarantined`; the request's one
commit point is the connection dependency (api/deps.py), as for the API.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.state import AckOutcome, acknowledge
from api.auth import Role
from api.console.users import authenticate_user, set_locale
from api.console.web import LANG_COOKIE, Viewer, ViewerScope, cookies, render, viewer
from api.deps import Conn, not_found, require_role, unthrottled_client
from api.downloads import attachment
from api.inventory import build_inventory, inventory_csv
from api.params import MAX_YEAR, MIN_YEAR, SITE_ID, EnterpriseQ, SiteQ, Year, local_range
from api.repository import alerts as alerts_repo
from api.repository import hourly as hourly_repo
from api.repository import meters as meters_repo
from api.routes.reports import inventory_answer
from api.scope import meter_visible
from api.throttle import AuthThrottle
from core.emissions.counters import Replacement
from core.park.repository import publish_factor_value
from core.settings import Settings
from engine import marks as engine_marks
from ingest.replay import MAX_IDS, replay_quarantined

router = APIRouter(prefix="/console", include_in_schema=False)

Token = Annotated[str | None, Form(alias="csrf")]


def _back(url: str, note: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}note={note}", 303)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> Response:
    return render(request, None, "signin.html", {"failed": False})


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    client: Annotated[str, Depends(unthrottled_client)],
    conn: Conn,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Token = None,
) -> Response:
    """Failed sign-ins take from the same per-address budget as failed API keys."""
    cookies(request).check_csrf(request, csrf)
    user = authenticate_user(conn, username, password)
    if user is None:
        throttle: AuthThrottle = request.app.state.auth_throttle
        throttle.failed(client)
        return render(request, None, "signin.html", {"failed": True}, status=401)
    response = RedirectResponse("/console/", 303)
    cookies(request).start_session(response, user.id)
    return response


@router.post("/signout")
def signout(request: Request, csrf: Token = None) -> Response:
    cookies(request).check_csrf(request, csrf)
    response = RedirectResponse("/console/signin", 303)
    cookies(request).end_session(response)
    return response


@router.post("/language")
def language(
    request: Request,
    conn: Conn,
    lang: Annotated[str, Form(pattern="^(vi|en)$")],
    back: Annotated[str, Form(pattern=r"^/console[A-Za-z0-9_/?&=.:%+-]*$")] = "/console/",
    csrf: Token = None,
) -> Response:
    """The user's language (stored on the user), or a visitor's (a cookie)."""
    jar = cookies(request)
    jar.check_csrf(request, csrf)
    user_id = jar.user_id(request)
    if user_id is not None:
        set_locale(conn, user_id, lang)
    response = RedirectResponse(back, 303)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 86400,
        path="/console",
        samesite="lax",
        httponly=True,
        secure=jar.secure,
    )
    return response


@router.post("/alerts/{alert_id}/ack")
def ack(
    request: Request,
    conn: Conn,
    alert_id: int,
    site: Annotated[str, Form(pattern=SITE_ID)],
    csrf: Token = None,
) -> Response:
    user = viewer(request, conn)
    cookies(request).check_csrf(request, csrf)
    alert = alerts_repo.get_alert(conn, alert_id)
    caller = user.principal
    if alert is None or (caller.is_tenant and alert["enterprise"] != caller.enterprise_id):
        raise not_found(f"alert {alert_id}")
    require_role(caller, Role.admin)
    result = acknowledge(conn, alert_id, caller.name)
    if result.outcome is AckOutcome.not_found:
        raise not_found(f"alert {alert_id}")
    return _back(f"/console/alerts?site={alert['site']}", result.outcome.value)


@router.post("/meters/{meter_id}/replacements")
def replacement(
    request: Request,
    conn: Conn,
    meter_id: str,
    replaced_at: Annotated[datetime, Form()],
    old_final_value: Annotated[float, Form(allow_inf_nan=False)],
    new_start_value: Annotated[float, Form(allow_inf_nan=False)],
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Token = None,
) -> Response:
    user = viewer(request, conn)
    cookies(request).check_csrf(request, csrf)
    visible = meter_visible(conn, user.principal, meter_id)
    if visible is None:
        raise not_found(f"meter {meter_id!r}")
    require_role(user.principal, Role.admin)
    site = visible[0]
    at = replaced_at if replaced_at.tzinfo else replaced_at.replace(tzinfo=UTC)
    reading, commissioned_at = meters_repo.register(conn, meter_id)
    if reading != "counter":
        raise HTTPException(422, "only counter meters have registers to replace")
    if (
        not MIN_YEAR <= at.year <= MAX_YEAR
        or at < commissioned_at
        or at > datetime.now(UTC) + timedelta(minutes=5)
    ):
        raise HTTPException(422, "the replacement time must be between commissioning and now")
    swap = Replacement(at.astimezone(UTC), old_final_value, new_start_value)
    done = engine_marks.record_replacement(conn, meter_id, swap, note)
    return _back(f"/console/meters?site={site}", "recorded" if done else "exists")


@router.post("/factors/{factor_key}/values")
def publish_factor(
    request: Request,
    conn: Conn,
    factor_key: str,
    site: Annotated[str, Form(pattern=SITE_ID)],
    valid_from: Annotated[datetime, Form()],
    kgco2e_per_unit: Annotated[float, Form(ge=0, allow_inf_nan=False)],
    source: Annotated[str, Form(min_length=3, max_length=500)],
    csrf: Token = None,
) -> Response:
    user = viewer(request, conn)
    cookies(request).check_csrf(request, csrf)
    require_role(user.principal, Role.admin)
    start = valid_from if valid_from.tzinfo else valid_from.replace(tzinfo=UTC)
    if not publish_factor_value(
        conn, factor_key, start, kgco2e_per_unit, source, datetime.now(UTC)
    ):
        raise not_found(f"factor {factor_key!r}")
    return _back(f"/console/factors?site={site}", "published")


@router.post("/quarantine/replay")
def replay(
    request: Request,
    conn: Conn,
    site: Annotated[str, Form(pattern=SITE_ID)],
    ids: Annotated[list[int], Form(min_length=1, max_length=MAX_IDS)],
    csrf: Token = None,
) -> Response:
    """Re-ingest the chosen messages through the normal path (docs/ingest.md), e.g.
    after their meter was registered: each ends stored or quarantined again."""
    user = viewer(request, conn)
    cookies(request).check_csrf(request, csrf)
    require_role(user.principal, Role.admin)
    settings: Settings = request.app.state.settings
    results = replay_quarantined(conn, ids, settings)
    done = sum(1 for r in results if r.outcome.value == "replayed")
    return _back(f"/console/quarantine?site={site}", f"replayed {done} of {len(ids)}")


@router.get("/downloads/hourly.csv")
def hourly_csv(
    request: Request, conn: Conn, scope: ViewerScope, start: date, end: date
) -> Response:
    """The API's hourly CSV for local days [start, end), at most 366 days."""
    max_days = request.app.state.settings.api_max_hourly_days
    a, b = local_range(start, end, scope.timezone, max_days)
    name = f"hourly-{scope.enterprise_id or scope.site_id}-{start}-{end}.csv"
    return attachment(hourly_repo.hourly_csv(conn, scope, a, b), name, "text/csv")


@router.get("/downloads/inventory.csv")
def inventory(conn: Conn, scope: ViewerScope, year: Year) -> Response:
    result = build_inventory(conn, scope, year, datetime.now(UTC))
    name = f"inventory-{scope.enterprise_id or scope.site_id}-{year}.csv"
    return attachment(inventory_csv(result), name, "text/csv")


@router.get("/downloads/ghg-inventory")
def ghg_inventory(
    conn: Conn,
    user: Viewer,
    site: SiteQ,
    year: Year,
    format: Annotated[Literal["xlsx", "html"], Query()] = "xlsx",
    years: Annotated[int, Query(ge=1, le=2)] = 1,
    enterprise: EnterpriseQ = None,
) -> Response:
    """The Decree 06 / Circular 38 inventory (docs/reports.md), as the API serves it."""
    answer = inventory_answer(conn, user.principal, site, year, years, enterprise, format)
    assert isinstance(answer, Response)  # xlsx and html are files
    return answer
