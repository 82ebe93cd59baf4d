"""The park file's report inputs (SPEC section 8): TOE factors and allocations.

Kept apart from `core.park.repository` so the configuration's core tables and the
reports' inputs each have one short module; the upsert is the repository's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from core.park.models import Park
from core.park.summary import ApplySummary

Upsert = Callable[[Connection, ApplySummary, str, tuple[str, ...], dict[str, Any]], bool]


def apply_report_inputs(
    conn: Connection, summary: ApplySummary, park: Park, upsert: Upsert
) -> None:
    """TOE factors and allocations (SPEC section 8); those left out of the file go."""
    for toe in park.toe_factors:
        upsert(
            conn,
            summary,
            "toe_factors",
            ("kind",),
            {
                "kind": toe.kind.value,
                "unit": toe.unit,
                "toe_per_unit": toe.toe_per_unit,
                "source": toe.source,
            },
        )
    kinds = [t.kind.value for t in park.toe_factors]
    gone = conn.execute(
        text("DELETE FROM toe_factors WHERE NOT (kind = ANY(:k))"), {"k": kinds}
    ).rowcount
    if gone:
        summary.deactivated["toe_factors"] += gone
    keep: list[str] = []
    for _, ent, allocation in (
        (s, e, a) for s in park.sites for e in s.enterprises for a in e.allocations
    ):
        keep.append(f"{ent.id}/{allocation.year}")
        upsert(
            conn,
            summary,
            "production_allocations",
            ("enterprise_id", "year"),
            {
                "enterprise_id": ent.id,
                "year": allocation.year,
                "tco2e_per_unit": allocation.tco2e_per_unit,
                "unit": allocation.unit,
                "source": allocation.source,
            },
        )
    gone = conn.execute(
        text(
            "DELETE FROM production_allocations "
            "WHERE NOT (enterprise_id || '/' || year = ANY(:keep))"
        ),
        {"keep": keep},
    ).rowcount
    if gone:
        summary.deactivated["production_allocations"] += gone
