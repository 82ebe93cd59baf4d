"""What ingest kept out (admin only): reason, topic and the raw payload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Role
from api.deps import ERRORS, AppSettings, Caller, Conn, invalid, require_role
from api.params import SITE_ID
from api.repository import quarantine as repo
from api.schemas import QuarantineItem, QuarantineOut
from api.scope import resolve

router = APIRouter(prefix="/v1", tags=["quarantine"], responses=ERRORS)


@router.get("/quarantine", response_model=QuarantineOut, summary="Quarantined messages (admin)")
def quarantine(
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    site: Annotated[str | None, Query(pattern=SITE_ID)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> QuarantineOut:
    """Newest first. Without `site`, every site's (and unroutable topics'). Page on
    with `before=next_before` from the previous answer."""
    require_role(caller, Role.admin)
    if limit > settings.api_max_page_size:
        invalid("limit", f"at most {settings.api_max_page_size} per page")
    if site is not None:
        resolve(conn, caller, site)
    rows = repo.list_quarantine(conn, site, before, limit)
    items = [QuarantineItem.model_validate(r) for r in rows]
    return QuarantineOut(items=items, next_before=items[-1].id if len(items) == limit else None)
