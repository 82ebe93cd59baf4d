"""Alerts of a site, and their acknowledgement."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query

from alerts import state as alert_state
from api.auth import Role
from api.deps import ERRORS, AppSettings, Caller, Conn, invalid, not_found, require_role
from api.params import SiteQ
from api.repository import alerts as repo
from api.schemas import AckIn, AlertOut, AlertsOut, ErrorOut
from api.scope import resolve

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=ERRORS)

State = Literal["firing", "acknowledged", "open", "resolved", "all"]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("", response_model=AlertsOut, summary="Alerts of a site, newest first")
def list_alerts(
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    site: SiteQ,
    state: Annotated[State, Query(description="open = firing or acknowledged.")] = "all",
    limit: Annotated[int, Query(ge=1)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertsOut:
    """A tenant sees only alerts about its own enterprise."""
    if limit > settings.api_max_page_size:
        invalid("limit", f"at most {settings.api_max_page_size} per page")
    scope = resolve(conn, caller, site)
    rows = repo.list_alerts(conn, site, state, scope.enterprise_id, limit, offset)
    return AlertsOut(site=site, state=state, items=[AlertOut.model_validate(r) for r in rows])


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    responses={409: {"model": ErrorOut, "description": "The alert is resolved."}},
    summary="Acknowledge a firing alert (admin)",
)
def acknowledge(
    conn: Conn,
    caller: Caller,
    alert_id: AlertId,
    body: Annotated[AckIn | None, Body()] = None,
) -> AlertOut:
    """Firing -> acknowledged, recording who and an optional note, notified like any
    other change (MQTT, webhooks, Alertmanager); acknowledging an acknowledged alert
    again changes nothing. A resolved alert answers 409."""
    alert = repo.get_alert(conn, alert_id)
    if alert is None or (caller.is_tenant and alert["enterprise"] != caller.enterprise_id):
        raise not_found(f"alert {alert_id}")
    require_role(caller, Role.admin)
    if alert["state"] == "resolved":
        raise HTTPException(409, f"alert {alert_id} is resolved")
    alert_state.acknowledge(conn, alert_id, caller.name, note=body.note if body else "")
    return AlertOut.model_validate(repo.get_alert(conn, alert_id) or alert)
