"""Reports for regulators and markets (SPEC section 8): inventory, obligation
position, intensity, and frozen submissions with their restatements.

Every endpoint resolves the caller's scope first (api.scope): a tenant key sees
its own enterprise only, and anything else answers 404.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from api.auth import Principal, Role
from api.deps import ERRORS, Caller, Conn, not_found, require_role
from api.downloads import attachment
from api.params import MAX_YEAR, MIN_YEAR, EnterpriseQ, SiteQ, Year
from api.schemas import ErrorOut
from api.scope import resolve
from reports import build
from reports import repository as report_repo
from reports.html import inventory_html
from reports.model import Inventory
from reports.position import Intensity, Position
from reports.submissions import ChainCheck, Change
from reports.xlsx import inventory_xlsx

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERRORS)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Years = Annotated[int, Query(ge=1, le=2, description="1: the year; 2: the two-year cycle.")]
ReportFormat = Annotated[Literal["json", "xlsx", "html"], Query()]
SubmissionId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get(
    "/inventory",
    response_model=Inventory,
    responses={200: {"content": {XLSX: {}, "text/html": {}}}},
    summary="GHG inventory of a year or two-year cycle (Decree 06 / Circular 38)",
)
def inventory(
    conn: Conn,
    caller: Caller,
    site: SiteQ,
    year: Year,
    years: Years = 1,
    enterprise: EnterpriseQ = None,
    format: ReportFormat = "json",
) -> Response | Inventory:
    """Activity data in native units and TOE, emissions by scope and source, the
    factors used, completeness, uncertainty (IPCC approach 1) and the QA/QC log,
    per enterprise and for the park (or the tenant's enterprise)."""
    return inventory_answer(conn, caller, site, year, years, enterprise, format)


def inventory_answer(
    conn: Connection,
    caller: Principal,
    site: str,
    year: int,
    years: int,
    enterprise: str | None,
    format: str,
) -> Response | Inventory:
    """The inventory in the asked format, for the API and the console's downloads."""
    scope = resolve(conn, caller, site, enterprise)
    report = build.inventory(conn, site, year, years=years, enterprise=scope.enterprise_id)
    if format == "xlsx":
        name = f"inventory-{site}-{scope.enterprise_id or 'park'}-{year}.xlsx"
        return attachment(inventory_xlsx(report), name, XLSX)
    if format == "html":
        return Response(inventory_html(report), media_type="text/html; charset=utf-8")
    return report


class PositionsOut(BaseModel):
    site: str
    items: list[Position]


@router.get("/obligation", response_model=PositionsOut, summary="Obligation position")
def obligation(
    conn: Conn, caller: Caller, site: SiteQ, enterprise: EnterpriseQ = None
) -> PositionsOut:
    """Per enterprise, this year to date and projected to year end: TOE and tCO2e
    (scopes 1 + 2) against 1,000 TOE and 3,000 tCO2e."""
    scope = resolve(conn, caller, site, enterprise)
    return PositionsOut(site=site, items=build.obligation(conn, site, scope.enterprise_id))


class IntensitiesOut(BaseModel):
    site: str
    year: int
    items: list[Intensity]


@router.get("/intensity", response_model=IntensitiesOut, summary="Production and intensity")
def intensity(
    conn: Conn, caller: Caller, site: SiteQ, year: Year, enterprise: EnterpriseQ = None
) -> IntensitiesOut:
    """Monthly and yearly tCO2e per unit of product against the allocated intensity,
    and the projected surplus (> 0) or deficit (< 0) of allowances at year end."""
    scope = resolve(conn, caller, site, enterprise)
    items = build.intensities(conn, site, year, scope.enterprise_id)
    return IntensitiesOut(site=site, year=year, items=items)


class SubmitIn(BaseModel):
    site: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    years: int = Field(default=1, ge=1, le=2)
    enterprise: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class SubmissionOut(BaseModel):
    id: int
    site: str
    enterprise: str | None
    first_year: int
    years: int
    submitted_at: datetime
    submitted_by: str
    content_hash: str
    previous_hash: str | None


class SubmissionDetail(SubmissionOut):
    document: dict[str, Any]
    changes: list[Change]


class SubmissionsOut(BaseModel):
    site: str
    items: list[SubmissionOut]
    chains: dict[str, ChainCheck]


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "site": row["site_id"],
        "enterprise": row["enterprise_id"],
        "first_year": row["first_year"],
        "years": row["years"],
        "submitted_at": row["submitted_at"],
        "submitted_by": row["submitted_by"],
        "content_hash": row["content_hash"],
        "previous_hash": row["previous_hash"],
    }


@router.post(
    "/submissions",
    response_model=SubmissionOut,
    status_code=201,
    responses={409: {"model": ErrorOut, "description": "A concurrent submission won."}},
    summary="Freeze an inventory as submitted (admin, or the enterprise's tenant)",
)
def submit(conn: Conn, caller: Caller, body: SubmitIn) -> SubmissionOut:
    """Stores the inventory as computed now with a SHA-256 content hash chained to
    the previous submission of the same enterprise (or of the park)."""
    scope = resolve(conn, caller, body.site, body.enterprise)
    require_role(caller, Role.admin, Role.tenant)
    try:
        with conn.begin_nested():  # the request's one commit point is api/deps.py
            created = build.submit(
                conn,
                body.site,
                body.year,
                years=body.years,
                enterprise=scope.enterprise_id,
                by=caller.name,
            )
    except IntegrityError:  # another first submission of this chain won the race
        raise HTTPException(409, "another submission of this chain was just made; retry") from None
    row = report_repo.submission(conn, created["id"])
    assert row is not None
    return SubmissionOut(**_out(row))


@router.get("/submissions", response_model=SubmissionsOut, summary="Submissions and their chains")
def submissions(
    conn: Conn, caller: Caller, site: SiteQ, enterprise: EnterpriseQ = None
) -> SubmissionsOut:
    """Oldest first, with each chain verified from its first link."""
    scope = resolve(conn, caller, site, enterprise)
    rows = report_repo.submissions(conn, site, scope.enterprise_id)
    return SubmissionsOut(
        site=site,
        items=[SubmissionOut(**_out(r)) for r in rows],
        chains=build.verify(conn, site, scope.enterprise_id),
    )


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionDetail,
    summary="A submission and what has been restated since, line by line",
)
def submission(conn: Conn, caller: Caller, submission_id: SubmissionId) -> SubmissionDetail:
    """`changes` lists every line of the inventory recomputed now that differs from
    the submitted one (later data, a replaced meter, a revised factor)."""
    row = report_repo.submission(conn, submission_id)
    if row is None or (caller.is_tenant and row["enterprise_id"] != caller.enterprise_id):
        raise not_found(f"submission {submission_id}")
    return SubmissionDetail(
        **_out(row),
        document=json.loads(row["document"]),
        changes=build.restatement(conn, row),
    )
