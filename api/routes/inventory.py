"""The MRV inventory of a site or enterprise for one calendar year (JSON or CSV)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from api.deps import ERRORS, Caller, Conn
from api.inventory import build_inventory, inventory_csv
from api.params import EnterpriseQ, SiteQ, Year
from api.routes.emissions import Format, wants_csv
from api.schemas import InventoryOut
from api.scope import resolve

router = APIRouter(prefix="/v1", tags=["inventory"], responses=ERRORS)


@router.get(
    "/inventory",
    response_model=InventoryOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    summary="MRV inventory: per local month, scope and kind",
)
def inventory(
    request: Request,
    conn: Conn,
    caller: Caller,
    site: SiteQ,
    year: Year,
    enterprise: EnterpriseQ = None,
    format: Format = None,
) -> Response | InventoryOut:
    """Consumption, CO2e and avoided CO2e per local month, scope and kind of the
    site's calendar year, the emission-factor values applied with their sources,
    completeness (measured / expected meter-hours) and the estimated share.
    Sub-meters are left out (their main meter counts them)."""
    scope = resolve(conn, caller, site, enterprise)
    result = build_inventory(conn, scope, year, datetime.now(UTC))
    if wants_csv(request, format):
        return Response(inventory_csv(result), media_type="text/csv")
    return result
