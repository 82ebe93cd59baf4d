"""The console's pages (GET): overview, enterprise, meters, alerts, quarantine,
factors and downloads. Scope checks are `api.scope.resolve` with the user's
principal, so a tenant meets the same 404s as with its API key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from api.auth import Role
from api.console import charts, views
from api.console.i18n import number, translations
from api.console.web import Viewer, render, request_locale, visible_sites
from api.deps import Conn, not_found, require_role
from api.params import OBJECT_ID, SITE_ID
from api.repository import alerts as alerts_repo
from api.repository import meters as meters_repo
from api.repository import quarantine as quarantine_repo
from api.repository import totals as totals_repo
from api.scope import Scope, resolve
from core.reporting import SiteRoadmap, site_roadmap

router = APIRouter(prefix="/console", include_in_schema=False)

SiteP = Annotated[str, Query(pattern=SITE_ID)]
# The end of the week shown (default: now), for looking back at older data.
WeekEnd = Annotated[datetime | None, Query(alias="end")]


def _end(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _week_chart(request: Request, points: list[views.HourPoint], tz: str, with_budget: bool) -> str:
    locale = request_locale(request)
    _ = translations(locale).gettext
    ticks = [
        (i, p.hour.astimezone(ZoneInfo(tz)).strftime("%d/%m"))
        for i, p in enumerate(points)
        if p.hour.astimezone(ZoneInfo(tz)).hour == 0
    ]
    return charts.bars_with_line(
        [p.co2e_kg for p in points],
        [p.budget_kg or 0.0 for p in points] if with_budget else [],
        ticks,
        charts.Axis(_("Day (%(tz)s)") % {"tz": tz}),
        charts.Axis(_("CO2e, kg per hour")),
        _("Last 7 days, hourly"),
        lambda v: number(v, locale, 0),
    )


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request, conn: Conn, user: Viewer) -> Response:
    """A tenant's home is its enterprise; everyone else's the first site's overview."""
    sites = visible_sites(conn, user)
    if not sites:
        raise not_found("site")
    if user.role is Role.tenant:
        target = f"/console/enterprise?site={sites[0].id}&enterprise={user.enterprise_id}"
    else:
        target = f"/console/overview?site={sites[0].id}"
    return RedirectResponse(target, 303)


def _site_roadmap(conn: Connection, scope: Scope) -> SiteRoadmap:
    roadmap = site_roadmap(conn, scope.site_id)
    if roadmap is None:
        raise not_found(f"roadmap of site {scope.site_id!r}")
    return roadmap


@router.get("/overview", response_class=HTMLResponse)
def overview(
    request: Request, conn: Conn, user: Viewer, site: SiteP, end: WeekEnd = None
) -> Response:
    """Site-wide figures: like the API's roadmap endpoints, not for tenants (403)."""
    caller = user.principal
    require_role(caller, Role.admin, Role.operator)
    scope = resolve(conn, caller, site)
    roadmap = _site_roadmap(conn, scope)
    now = datetime.now(UTC)
    data = views.overview(conn, scope, roadmap, now, _end(end), request.app.state.hourly_cache)
    locale = request_locale(request)
    _ = translations(locale).gettext
    trajectory = charts.lines_by_year(
        data.years,
        data.targets,
        data.actuals,
        [y for y, _ in roadmap.milestones],
        charts.Axis(_("Year")),
        charts.Axis(_("tCO2e per year")),
        _("Roadmap trajectory"),
        lambda v: number(v, locale, 0),
    )
    return render(
        request,
        conn,
        "overview.html",
        {
            "site": site,
            "tz": scope.timezone,
            "data": data,
            "week_chart": _week_chart(request, data.week, scope.timezone, True),
            "trajectory_chart": trajectory,
        },
    )


@router.get("/enterprise", response_class=HTMLResponse)
def enterprise(
    request: Request,
    conn: Conn,
    user: Viewer,
    site: SiteP,
    enterprise: Annotated[str, Query(pattern=OBJECT_ID)],
    end: WeekEnd = None,
) -> Response:
    scope = resolve(conn, user.principal, site, enterprise)
    b = _end(end)
    a, b = views.week_ending(b)
    week = views.hourly_points(conn, scope, a, b, request.app.state.hourly_cache)
    tz = ZoneInfo(scope.timezone)
    first = datetime.combine(
        (b.astimezone(tz) - timedelta(days=30)).date(), datetime.min.time(), tz
    )
    daily = totals_repo.period_totals(conn, scope, "day", first.astimezone(UTC), b)
    _, meters = meters_repo.list_meters(conn, site, enterprise, 1000, 0)
    return render(
        request,
        conn,
        "enterprise.html",
        {
            "site": site,
            "tz": scope.timezone,
            "enterprise": enterprise,
            "week_total": sum(p.co2e_kg for p in week),
            "week_start": a,
            "week_end": b,
            "week_chart": _week_chart(request, week, scope.timezone, False),
            "daily": daily,
            "meters": meters,
            "alerts": alerts_repo.list_alerts(conn, site, "open", enterprise, 50, 0),
        },
    )


@router.get("/meters", response_class=HTMLResponse)
def meters(
    request: Request, conn: Conn, user: Viewer, site: SiteP, end: WeekEnd = None
) -> Response:
    scope = resolve(conn, user.principal, site)
    b = _end(end)
    rows = views.meters_quality(conn, scope, b - timedelta(days=30), b)
    return render(
        request, conn, "meters.html", {"site": site, "tz": scope.timezone, "meters": rows}
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts(
    request: Request,
    conn: Conn,
    user: Viewer,
    site: SiteP,
    state: Annotated[str, Query(pattern="^(open|firing|acknowledged|resolved|all)$")] = "open",
) -> Response:
    scope = resolve(conn, user.principal, site)
    rows = alerts_repo.list_alerts(conn, site, state, scope.enterprise_id, 200, 0)
    return render(
        request,
        conn,
        "alerts.html",
        {"site": site, "tz": scope.timezone, "state": state, "alerts": rows},
    )


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine(request: Request, conn: Conn, user: Viewer, site: SiteP) -> Response:
    require_role(user.principal, Role.admin)
    scope = resolve(conn, user.principal, site)
    rows = quarantine_repo.list_quarantine(conn, site, None, 200)
    return render(
        request, conn, "quarantine.html", {"site": site, "tz": scope.timezone, "items": rows}
    )


@router.get("/factors", response_class=HTMLResponse)
def factors(request: Request, conn: Conn, user: Viewer, site: SiteP) -> Response:
    scope = resolve(conn, user.principal, site)
    return render(
        request,
        conn,
        "factors.html",
        {"site": site, "tz": scope.timezone, "factors": views.factor_registry(conn)},
    )


@router.get("/downloads", response_class=HTMLResponse)
def downloads(request: Request, conn: Conn, user: Viewer, site: SiteP) -> Response:
    scope = resolve(conn, user.principal, site)
    today = datetime.now(UTC).astimezone(ZoneInfo(scope.timezone)).date()
    return render(
        request,
        conn,
        "downloads.html",
        {
            "site": site,
            "tz": scope.timezone,
            "enterprise": scope.enterprise_id,
            "today": today,
            "years": list(range(today.year, today.year - 5, -1)),
        },
    )
