"""What ingest kept out (admin only): reason, topic and the raw payload."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.auth import Role
from api.deps import ERRORS, AppSettings, Caller, Conn, invalid, require_role
from api.params import SITE_ID
from api.repository import quarantine as repo
from api.schemas import (
    QuarantineDrop,
    QuarantineDropsOut,
    QuarantineItem,
    QuarantineOut,
    ReplayIn,
    ReplayItem,
    ReplayOut,
)
from api.scope import resolve
from ingest.replay import replay_quarantined

router = APIRouter(prefix="/v1", tags=["quarantine"], responses=ERRORS)


@router.get("/quarantine", response_model=QuarantineOut, summary="Quarantined messages (admin)")
def quarantine(
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    site: Annotated[str | None, Query(pattern=SITE_ID)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    state: Annotated[
        Literal["all", "open", "replayed"], Query(description="open = not replayed.")
    ] = "all",
) -> QuarantineOut:
    """Newest first. Without `site`, every site's (and unroutable topics'). Page on
    with `before=next_before` from the previous answer. Replayed rows stay, marked
    with `replayed_at` and `replay_result`."""
    require_role(caller, Role.admin)
    if limit > settings.api_max_page_size:
        invalid("limit", f"at most {settings.api_max_page_size} per page")
    if site is not None:
        resolve(conn, caller, site)
    rows = repo.list_quarantine(conn, site, before, limit, state)
    items = [QuarantineItem.model_validate(r) for r in rows]
    return QuarantineOut(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get(
    "/quarantine/drops",
    response_model=QuarantineDropsOut,
    summary="What the quarantine rate limit did not store (admin)",
)
def quarantine_drops(
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    site: Annotated[str | None, Query(pattern=SITE_ID)] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> QuarantineDropsOut:
    """Rejections over a publishing topic's quarantine rate (docs/ingest.md): not
    stored as rows, counted per source (topic), reason and hour, newest hour first."""
    require_role(caller, Role.admin)
    if limit > settings.api_max_page_size:
        invalid("limit", f"at most {settings.api_max_page_size} per page")
    if site is not None:
        resolve(conn, caller, site)
    rows = repo.list_drops(conn, site, limit)
    return QuarantineDropsOut(items=[QuarantineDrop.model_validate(r) for r in rows])


@router.post(
    "/quarantine/replay",
    response_model=ReplayOut,
    summary="Replay quarantined messages through ingest (admin)",
)
def replay(conn: Conn, caller: Caller, settings: AppSettings, body: ReplayIn) -> ReplayOut:
    """Re-ingest the messages of the chosen rows through the normal parse and write
    path (ingest/replay.py), e.g. after registering the missing meter. Each reading
    ends stored or quarantined again in a fresh row, never both; the chosen rows,
    and every other row of the same message, stay, marked replayed. A row whose
    payload was cut at the cap cannot be replayed (`payload_cut`)."""
    require_role(caller, Role.admin)
    results = replay_quarantined(conn, body.ids, settings)
    return ReplayOut(
        items=[
            ReplayItem(
                id=r.id,
                outcome=r.outcome.value,
                rows=r.rows,
                stored=r.stored,
                duplicates=r.duplicates,
                conflicts=r.conflicts,
                quarantined=r.quarantined,
            )
            for r in results
        ]
    )
