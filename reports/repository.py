"""SQL of the reports: per-meter totals of a period, factors used, QA/QC counts,
monthly totals per kind, allocations and submissions. Reads only, except
`insert_submission`.

Figures come from `hourly_emissions` (main meters only, as the rollups count
them), so an inventory's totals are the sums of the hourly rows it reports on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from core.meter_kinds import scope_of
from reports.inventory import EnterpriseInfo, MeterData
from reports.model import FactorUsed, QaQc, Replacement, ToeUsed

_E = "(CAST(:e AS text) IS NULL OR {col} = :e)"


def site_row(conn: Connection, site: str) -> tuple[str, str] | None:
    """(name, timezone) of a site, or None."""
    row = conn.execute(
        text("SELECT name, timezone FROM sites WHERE id = :s"), {"s": site}
    ).one_or_none()
    return (str(row.name), str(row.timezone)) if row is not None else None


def enterprises(conn: Connection, site: str, enterprise: str | None) -> list[EnterpriseInfo]:
    rows = conn.execute(
        text(
            "SELECT id, name, industry FROM enterprises WHERE site_id = :s "  # noqa: S608
            f"AND (active OR id = :e) AND {_E.format(col='id')} ORDER BY id"
        ),
        {"s": site, "e": enterprise},
    )
    return [EnterpriseInfo(r.id, r.name, r.industry) for r in rows]


def meter_data(
    conn: Connection, site: str, enterprise: str | None, start: datetime, end: datetime
) -> list[MeterData]:
    """Every main meter that is active or has hours in [start, end), with its sums."""
    rows = conn.execute(
        text(
            "WITH h AS (SELECT meter_id, min(unit) AS unit, sum(consumption) AS consumption, "  # noqa: S608
            "sum(co2e_kg) AS co2e_kg, sum(avoided_co2e_kg) AS avoided, count(*) AS n, "
            "count(*) FILTER (WHERE estimated) AS est, min(scope) AS scope "
            "FROM hourly_emissions WHERE site_id = :s AND hour >= :a AND hour < :b "
            f"AND {_E.format(col='enterprise_id')} GROUP BY meter_id) "
            "SELECT m.id AS meter_id, m.enterprise_id, m.kind, coalesce(h.unit, m.unit) AS unit, "
            "m.factor_key, m.accuracy_pct, m.commissioned_at, h.scope, "
            "coalesce(h.consumption, 0) AS consumption, coalesce(h.co2e_kg, 0) AS co2e_kg, "
            "coalesce(h.avoided, 0) AS avoided_co2e_kg, coalesce(h.n, 0) AS meter_hours, "
            "coalesce(h.est, 0) AS estimated_hours FROM meters m LEFT JOIN h ON h.meter_id = m.id "
            "WHERE m.site_id = :s AND m.parent_id IS NULL AND (m.active OR h.n IS NOT NULL) "
            f"AND {_E.format(col='m.enterprise_id')} ORDER BY m.enterprise_id, m.id"
        ),
        {"s": site, "e": enterprise, "a": start, "b": end},
    )
    # A meter without hours in the period has no stored scope: its kind's.
    return [
        MeterData(**{**r._mapping, "scope": scope_of(r.kind) if r.scope is None else r.scope})
        for r in rows
    ]


def factors_used(
    conn: Connection, site: str, enterprise: str | None, start: datetime, end: datetime
) -> list[FactorUsed]:
    """The factor values that priced the period's hours (production's zero factor left out)."""
    rows = conn.execute(
        text(
            "SELECT v.factor_key AS key, f.unit, v.valid_from, v.published_at, "  # noqa: S608
            "v.kgco2e_per_unit, v.source, f.uncertainty_pct FROM emission_factor_values v "
            "JOIN emission_factors f ON f.key = v.factor_key WHERE v.id IN ("
            "SELECT DISTINCT h.factor_value_id FROM hourly_emissions h "
            "JOIN meters m ON m.id = h.meter_id WHERE h.site_id = :s AND h.hour >= :a "
            "AND h.hour < :b AND m.parent_id IS NULL AND h.scope > 0 "
            f"AND {_E.format(col='h.enterprise_id')}) ORDER BY v.factor_key, v.valid_from"
        ),
        {"s": site, "e": enterprise, "a": start, "b": end},
    )
    return [FactorUsed(line=f"{r.key}@{r.valid_from.isoformat()}", **r._mapping) for r in rows]


def toe_factors(conn: Connection) -> list[ToeUsed]:
    rows = conn.execute(
        text("SELECT kind, unit, toe_per_unit, source FROM toe_factors ORDER BY kind")
    )
    return [ToeUsed(line=r.kind, **r._mapping) for r in rows]


_QA = {
    "quarantine": (
        "SELECT q.reason, count(*) AS n FROM quarantine q WHERE q.site_id = :s "
        "AND q.received_at >= :a AND q.received_at < :b AND (CAST(:e AS text) IS NULL OR "
        "q.meter_id IN (SELECT id FROM meters WHERE enterprise_id = :e)) GROUP BY q.reason"
    ),
    "conflicts": (
        "SELECT count(*) FROM reading_conflicts c JOIN meters m ON m.id = c.meter_id "
        "WHERE m.site_id = :s AND c.ts >= :a AND c.ts < :b AND "
        "(CAST(:e AS text) IS NULL OR m.enterprise_id = :e)"
    ),
    "events": (
        "SELECT d.kind, count(*) AS n FROM data_quality_events d JOIN meters m "
        "ON m.id = d.meter_id WHERE m.site_id = :s AND d.ts >= :a AND d.ts < :b AND "
        "(CAST(:e AS text) IS NULL OR m.enterprise_id = :e) GROUP BY d.kind"
    ),
    "replacements": (
        "SELECT r.meter_id, r.replaced_at, r.old_final_value, r.new_start_value, r.note "
        "FROM meter_replacements r JOIN meters m ON m.id = r.meter_id WHERE m.site_id = :s "
        "AND r.replaced_at >= :a AND r.replaced_at < :b AND "
        "(CAST(:e AS text) IS NULL OR m.enterprise_id = :e) ORDER BY r.replaced_at, r.meter_id"
    ),
    # A factor value beginning inside the period was published after (some of) the
    # hours it prices were first computed: it restates them.
    "restated": (
        "SELECT v.factor_key, v.valid_from, v.kgco2e_per_unit, count(h.*) AS n "
        "FROM emission_factor_values v JOIN hourly_emissions h ON h.factor_value_id = v.id "
        "JOIN meters m ON m.id = h.meter_id WHERE h.site_id = :s AND h.hour >= :a "
        "AND h.hour < :b AND v.valid_from >= :a AND v.valid_from < :b "
        "AND m.parent_id IS NULL AND h.scope > 0 "
        "AND (CAST(:e AS text) IS NULL OR h.enterprise_id = :e) "
        "GROUP BY v.factor_key, v.valid_from, v.kgco2e_per_unit ORDER BY 1, 2"
    ),
}


def qaqc(
    conn: Connection, site: str, enterprise: str | None, start: datetime, end: datetime
) -> QaQc:
    params = {"s": site, "e": enterprise, "a": start, "b": end}

    def rows(name: str) -> list[Any]:
        return list(conn.execute(text(_QA[name]), params))

    restated = rows("restated")
    return QaQc(
        quarantined_by_reason={r.reason: r.n for r in rows("quarantine")},
        conflicts=int(rows("conflicts")[0][0]),
        events_by_kind={r.kind: r.n for r in rows("events")},
        replacements=[
            Replacement(line=f"{r.meter_id}@{r.replaced_at.isoformat()}", **r._mapping)
            for r in rows("replacements")
        ],
        restated_factor_values=[
            f"{r.factor_key}@{r.valid_from.isoformat()}={r.kgco2e_per_unit!r}" for r in restated
        ],
        restated_meter_hours=sum(r.n for r in restated),
    )


def monthly_kinds(
    conn: Connection, site: str, enterprise: str, tz: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """An enterprise's totals per local month, kind and scope (canonical units)."""
    rows = conn.execute(
        text(
            "SELECT date_trunc('month', hour, :tz) AS month, kind, min(scope) AS scope, "
            "min(unit) AS unit, sum(consumption) AS consumption, sum(co2e_kg) AS co2e_kg "
            "FROM enterprise_hourly WHERE enterprise_id = :e AND site_id = :s "
            "AND hour >= :a AND hour < :b GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {"tz": tz, "s": site, "e": enterprise, "a": start, "b": end},
    )
    return [dict(r._mapping) for r in rows]


def allocation(conn: Connection, enterprise: str, year: int) -> dict[str, Any] | None:
    row = conn.execute(
        text(
            "SELECT tco2e_per_unit, unit, source FROM production_allocations "
            "WHERE enterprise_id = :e AND year = :y"
        ),
        {"e": enterprise, "y": year},
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def last_hash(conn: Connection, chain: str) -> str | None:
    """The chain's newest hash, row-locked so a concurrent submission waits for it."""
    return conn.execute(
        text(
            "SELECT content_hash FROM report_submissions WHERE chain = :c "
            "ORDER BY id DESC LIMIT 1 FOR UPDATE"
        ),
        {"c": chain},
    ).scalar_one_or_none()


def insert_submission(conn: Connection, row: dict[str, Any]) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO report_submissions (site_id, enterprise_id, chain, first_year, "
                "years, submitted_by, document, content_hash, previous_hash) VALUES (:site, "
                ":enterprise, :chain, :first_year, :years, :by, :document, :hash, :previous) "
                "RETURNING id"
            ),
            row,
        ).scalar_one()
    )


def submissions(conn: Connection, site: str, enterprise: str | None) -> list[dict[str, Any]]:
    """Submissions of a site (all chains) or of one enterprise, oldest first."""
    rows = conn.execute(
        text(
            "SELECT id, site_id, enterprise_id, chain, first_year, years, submitted_at, "  # noqa: S608
            "submitted_by, document, content_hash, previous_hash FROM report_submissions "
            f"WHERE site_id = :s AND {_E.format(col='enterprise_id')} ORDER BY id"
        ),
        {"s": site, "e": enterprise},
    )
    return [dict(r._mapping) for r in rows]


def submission(conn: Connection, submission_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        text(
            "SELECT id, site_id, enterprise_id, chain, first_year, years, submitted_at, "
            "submitted_by, document, content_hash, previous_hash FROM report_submissions "
            "WHERE id = :i"
        ),
        {"i": submission_id},
    ).one_or_none()
    return dict(row._mapping) if row is not None else None
