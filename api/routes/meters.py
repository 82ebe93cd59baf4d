"""Registered meters with their last reading time and data-quality counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.auth import Role
from api.deps import ERRORS, AppSettings, Caller, Conn, invalid, not_found, require_role
from api.params import MAX_YEAR, MIN_YEAR, OBJECT_ID, EnterpriseQ, SiteQ
from api.repository import meters as repo
from api.schemas import ErrorOut, MeterOut, MetersOut, ReplacementIn, ReplacementOut
from api.scope import meter_visible, resolve
from core.emissions.counters import Replacement
from engine import marks as engine_marks

router = APIRouter(prefix="/v1/meters", tags=["meters"], responses=ERRORS)

MeterId = Annotated[str, Path(pattern=OBJECT_ID)]


@router.get("", response_model=MetersOut, summary="Meters of a site")
def list_meters(
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    site: SiteQ,
    enterprise: EnterpriseQ = None,
    limit: Annotated[int, Query(ge=1)] = 500,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MetersOut:
    """Meters in id order (a tenant sees its own enterprise's): kind, unit, parent
    (sub-meters), last stored reading, and counts of data-quality events (glitches,
    resets, wraps, long gaps, replacements), conflicting readings and quarantined
    messages."""
    if limit > settings.api_max_page_size:
        invalid("limit", f"at most {settings.api_max_page_size} per page")
    scope = resolve(conn, caller, site, enterprise)
    total, rows = repo.list_meters(conn, site, scope.enterprise_id, limit, offset)
    return MetersOut(site=site, total=total, items=[MeterOut.model_validate(r) for r in rows])


@router.get("/{meter_id}", response_model=MeterOut, summary="One meter")
def get_meter(conn: Conn, caller: Caller, meter_id: MeterId) -> MeterOut:
    if meter_visible(conn, caller, meter_id) is None:
        raise not_found(f"meter {meter_id!r}")
    row = repo.get_meter(conn, meter_id)
    if row is None:
        raise not_found(f"meter {meter_id!r}")
    return MeterOut.model_validate(row)


@router.post(
    "/{meter_id}/replacements",
    response_model=ReplacementOut,
    status_code=201,
    responses={409: {"model": ErrorOut, "description": "Already recorded for that time."}},
    summary="Record a meter (register) replacement (admin)",
)
def record_replacement(
    conn: Conn, caller: Caller, meter_id: MeterId, body: ReplacementIn
) -> ReplacementOut:
    """An explicit register swap (SPEC section 5): the old register's last interval
    ends at `old_final_value`, the new one starts from `new_start_value`. The engine
    restates the hours around it. Counter meters only."""
    if meter_visible(conn, caller, meter_id) is None:
        raise not_found(f"meter {meter_id!r}")
    require_role(caller, Role.admin)
    at = body.replaced_at
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        invalid("replaced_at", f"year must be between {MIN_YEAR} and {MAX_YEAR}", "body")
    reading, commissioned_at = repo.register(conn, meter_id)
    if reading != "counter":
        invalid("replaced_at", "only counter meters have registers to replace", "body")
    if at < commissioned_at or at > datetime.now(UTC) + timedelta(minutes=5):
        invalid("replaced_at", "must be between commissioning and now", "body")
    swap = Replacement(at.astimezone(UTC), body.old_final_value, body.new_start_value)
    if not engine_marks.record_replacement(conn, meter_id, swap, body.note):
        raise HTTPException(409, f"a replacement of {meter_id} at {at.isoformat()} exists")
    return ReplacementOut(
        meter=meter_id,
        replaced_at=swap.at,
        old_final_value=swap.old_final,
        new_start_value=swap.new_start,
        note=body.note,
    )
