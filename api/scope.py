"""What a request may see: site, enterprise and meter, checked against the caller.

Object-level authorisation (OWASP API1) happens here and only here: a tenant key is
bound to one enterprise; its site is that enterprise's site, and the enterprise
filter defaults to (and may only be) its own. Anything else, like any unknown id,
answers 404, so a tenant cannot even learn which ids exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from api.auth import Principal
from api.deps import not_found


@dataclass(frozen=True)
class MeterRef:
    id: str
    enterprise_id: str
    kind: str
    unit: str


@dataclass(frozen=True)
class Scope:
    site_id: str
    timezone: str
    enterprise_id: str | None = None
    meter: MeterRef | None = None


def resolve(
    conn: Connection,
    caller: Principal,
    site: str,
    enterprise: str | None = None,
    meter: str | None = None,
) -> Scope:
    row = conn.execute(text("SELECT timezone FROM sites WHERE id = :s"), {"s": site}).first()
    if row is None:
        raise not_found(f"site {site!r}")
    if caller.is_tenant:
        if enterprise is not None and enterprise != caller.enterprise_id:
            raise not_found(f"enterprise {enterprise!r}")
        enterprise = caller.enterprise_id
    if enterprise is not None:
        found = conn.execute(
            text("SELECT 1 FROM enterprises WHERE id = :e AND site_id = :s"),
            {"e": enterprise, "s": site},
        ).first()
        if found is None:
            # A tenant asking another site than its own lands here too.
            raise not_found(
                f"enterprise {enterprise!r}" if not caller.is_tenant else f"site {site!r}"
            )
    ref = None
    if meter is not None:
        m = conn.execute(
            text(
                "SELECT id, enterprise_id, kind, unit FROM meters "
                "WHERE id = :m AND site_id = :s "
                "AND (CAST(:e AS text) IS NULL OR enterprise_id = :e)"
            ),
            {"m": meter, "s": site, "e": enterprise},
        ).first()
        if m is None:
            raise not_found(f"meter {meter!r}")
        ref = MeterRef(m.id, m.enterprise_id, m.kind, m.unit)
    return Scope(site, str(row.timezone), enterprise, ref)


def meter_visible(conn: Connection, caller: Principal, meter_id: str) -> tuple[str, str] | None:
    """(site, enterprise) of a meter the caller may see, else None."""
    row = conn.execute(
        text("SELECT site_id, enterprise_id FROM meters WHERE id = :m"), {"m": meter_id}
    ).first()
    if row is None or (caller.is_tenant and row.enterprise_id != caller.enterprise_id):
        return None
    return str(row.site_id), str(row.enterprise_id)
