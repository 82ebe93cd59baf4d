"""All SQL for the park configuration: idempotent apply and read-back.

Upserts only touch a row when a value actually changed (`IS DISTINCT FROM`), so
applying the same file twice leaves every row, `updated_at` included, as it was.
Meters and enterprises missing from a new file are deactivated, never deleted:
their readings and history stay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from core.dirty_marks import mark_factor_hours
from core.park.device_store import apply_device_rows
from core.park.models import Park
from core.park.report_inputs import apply_report_inputs
from core.park.summary import ApplySummary


def _upsert(
    conn: Connection, summary: ApplySummary, table: str, key: tuple[str, ...], row: dict[str, Any]
) -> bool:
    """Insert or update one row; True when something was written."""
    columns = list(row)
    updates = [c for c in columns if c not in key]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - identifiers are ours
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
        + ", updated_at = now() WHERE "
        + f"({', '.join(f'{table}.{c}' for c in updates)}) IS DISTINCT FROM "
        + f"({', '.join(f'EXCLUDED.{c}' for c in updates)}) "
        + "RETURNING (xmax = 0) AS inserted"
    )
    result = conn.execute(text(sql), row).scalar_one_or_none()
    if result is True:
        summary.inserted[table] += 1
    elif result is False:
        summary.updated[table] += 1
    return result is not None


def _deactivate_missing(
    conn: Connection, summary: ApplySummary, table: str, keep: list[str]
) -> None:
    result = conn.execute(
        text(
            f"UPDATE {table} SET active = false, updated_at = now() "  # noqa: S608
            "WHERE active AND NOT (id = ANY(:keep))"
        ),
        {"keep": keep},
    )
    if result.rowcount:
        summary.deactivated[table] += result.rowcount


def apply_park(conn: Connection, park: Park) -> ApplySummary:
    """Make the stored configuration equal the file, within the caller's transaction."""
    summary = ApplySummary()
    for factor in park.factors:
        _upsert(
            conn,
            summary,
            "emission_factors",
            ("key",),
            {
                "key": factor.key,
                "unit": factor.unit,
                "description": factor.description,
                "uncertainty_pct": factor.uncertainty_pct,
            },
        )
        for value in factor.values:
            changed = _upsert(
                conn,
                summary,
                "emission_factor_values",
                ("factor_key", "valid_from"),
                {
                    "factor_key": factor.key,
                    "valid_from": value.valid_from,
                    "published_at": value.published_at,
                    "kgco2e_per_unit": value.kgco2e_per_unit,
                    "source": value.source,
                },
            )
            if changed:
                mark_factor_hours(conn, factor.key, value.valid_from)
    for site in park.sites:
        _upsert(
            conn,
            summary,
            "sites",
            ("id",),
            {
                "id": site.id,
                "name": site.name,
                "timezone": site.timezone,
                "active": True,
            },
        )
        _apply_roadmap(conn, summary, park, site.id)
        _apply_alert_rules(conn, summary, park, site.id)
        for ent in site.enterprises:
            _upsert(
                conn,
                summary,
                "enterprises",
                ("id",),
                {
                    "id": ent.id,
                    "site_id": site.id,
                    "name": ent.name,
                    "industry": ent.industry.value,
                    "gateway": ent.gateway_id,
                    "active": True,
                },
            )
            for meter in ent.meters:
                _upsert(
                    conn,
                    summary,
                    "meters",
                    ("id",),
                    {
                        "id": meter.id,
                        "site_id": site.id,
                        "enterprise_id": ent.id,
                        "kind": meter.kind.value,
                        "unit": meter.unit,
                        "reading": meter.reading,
                        "rollover": meter.rollover,
                        "interval_s": meter.interval_s,
                        "max_gap_s": meter.max_gap_s,
                        "max_rate_per_h": meter.max_rate_per_h,
                        "factor_key": park.factor_key_for(meter),
                        "commissioned_at": meter.commissioned_at,
                        "parent_id": meter.parent,
                        "description": meter.description,
                        "accuracy_pct": meter.accuracy_pct,
                        "active": True,
                    },
                )
    apply_report_inputs(conn, summary, park, _upsert)
    counters = (summary.inserted, summary.updated, summary.deactivated)
    for counter, rows in zip(counters, apply_device_rows(conn, park), strict=True):
        if rows:
            counter["gateway_devices"] += rows
    _deactivate_missing(conn, summary, "meters", [m.id for _, _, m in park.meters()])
    _deactivate_missing(
        conn, summary, "enterprises", [e.id for s in park.sites for e in s.enterprises]
    )
    _deactivate_missing(conn, summary, "sites", [s.id for s in park.sites])
    return summary


def _apply_roadmap(conn: Connection, summary: ApplySummary, park: Park, site_id: str) -> None:
    site = next(s for s in park.sites if s.id == site_id)
    if site.roadmap is None:
        return
    baseline = site.roadmap.baseline
    _upsert(
        conn,
        summary,
        "roadmaps",
        ("site_id",),
        {
            "site_id": site_id,
            "baseline_year": baseline.year,
            "baseline_tco2e": baseline.tco2e,
            "note": baseline.note,
        },
    )
    years = [m.year for m in site.roadmap.milestones]
    removed = conn.execute(
        text("DELETE FROM roadmap_milestones WHERE site_id = :site AND NOT (year = ANY(:years))"),
        {"site": site_id, "years": years},
    ).rowcount
    if removed:
        summary.deactivated["roadmap_milestones"] += removed
    for milestone in site.roadmap.milestones:
        row = {"site": site_id, "year": milestone.year, "pct": milestone.reduction_pct}
        result = conn.execute(
            text(
                "INSERT INTO roadmap_milestones (site_id, year, reduction_pct) "
                "VALUES (:site, :year, :pct) ON CONFLICT (site_id, year) DO UPDATE "
                "SET reduction_pct = EXCLUDED.reduction_pct "
                "WHERE roadmap_milestones.reduction_pct IS DISTINCT FROM EXCLUDED.reduction_pct "
                "RETURNING (xmax = 0)"
            ),
            row,
        ).scalar_one_or_none()
        if result is not None:
            (summary.inserted if result else summary.updated)["roadmap_milestones"] += 1


def site_alert_rules(park: Park, site_id: str) -> dict[str, Any]:
    """The site's alert rules with defaults filled in, as stored in `site_alert_rules`."""
    site = next(s for s in park.sites if s.id == site_id)
    return {
        "site": site.alerts.model_dump(mode="json"),
        "enterprises": {
            e.id: e.alerts.model_dump(mode="json", exclude_none=True)
            for e in site.enterprises
            if e.alerts is not None
        },
    }


def _apply_alert_rules(conn: Connection, summary: ApplySummary, park: Park, site_id: str) -> None:
    result = conn.execute(
        text(
            "INSERT INTO site_alert_rules (site_id, rules) VALUES (:site, :rules) "
            "ON CONFLICT (site_id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = now() "
            "WHERE site_alert_rules.rules IS DISTINCT FROM EXCLUDED.rules "
            "RETURNING (xmax = 0)"
        ).bindparams(bindparam("rules", type_=JSONB)),
        {"site": site_id, "rules": site_alert_rules(park, site_id)},
    ).scalar_one_or_none()
    if result is not None:
        (summary.inserted if result else summary.updated)["site_alert_rules"] += 1


def read_park(conn: Connection) -> dict[str, Any]:
    """The active configuration as stored, in the file's shape (for `config show` and HTTP)."""

    def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]

    factors = []
    for f in rows("SELECT key, unit, description FROM emission_factors ORDER BY key"):
        f["values"] = rows(
            "SELECT valid_from, published_at, kgco2e_per_unit, source "
            "FROM emission_factor_values WHERE factor_key = :k ORDER BY valid_from",
            k=f["key"],
        )
        factors.append(f)
    sites = []
    for site in rows("SELECT id, name, timezone FROM sites WHERE active ORDER BY id"):
        roadmap = rows(
            "SELECT baseline_year AS year, baseline_tco2e AS tco2e, note "
            "FROM roadmaps WHERE site_id = :s",
            s=site["id"],
        )
        if roadmap:
            site["roadmap"] = {
                "baseline": roadmap[0],
                "milestones": rows(
                    "SELECT year, reduction_pct FROM roadmap_milestones "
                    "WHERE site_id = :s ORDER BY year",
                    s=site["id"],
                ),
            }
        site["enterprises"] = rows(
            "SELECT id, name, industry, gateway FROM enterprises "
            "WHERE site_id = :s AND active ORDER BY id",
            s=site["id"],
        )
        stored = conn.execute(
            text("SELECT rules FROM site_alert_rules WHERE site_id = :s"), {"s": site["id"]}
        ).scalar_one_or_none()
        if stored is not None:
            site["alerts"] = stored["site"]
            for ent in site["enterprises"]:
                if ent["id"] in stored["enterprises"]:
                    ent["alerts"] = stored["enterprises"][ent["id"]]
        for ent in site["enterprises"]:
            ent["meters"] = rows(
                "SELECT id, kind, unit, reading, rollover, interval_s, max_gap_s, "
                "max_rate_per_h, commissioned_at, factor_key AS factor, parent_id AS parent, "
                "description "
                "FROM meters WHERE enterprise_id = :e AND active ORDER BY id",
                e=ent["id"],
            )
        sites.append(site)
    return {"factors": factors, "sites": sites}


def publish_factor_value(
    conn: Connection,
    factor_key: str,
    valid_from: datetime,
    kgco2e_per_unit: float,
    source: str,
    published_at: datetime,
) -> bool:
    """Publish (or revise) one value of an existing factor, as `config apply` does for
    the file's values: the hours it covers are marked for the engine to restate.
    False when the factor is unknown."""
    if (
        conn.execute(
            text("SELECT 1 FROM emission_factors WHERE key = :k"), {"k": factor_key}
        ).first()
        is None
    ):
        return False
    if _upsert(
        conn,
        ApplySummary(),
        "emission_factor_values",
        ("factor_key", "valid_from"),
        {
            "factor_key": factor_key,
            "valid_from": valid_from,
            "published_at": published_at,
            "kgco2e_per_unit": kgco2e_per_unit,
            "source": source,
        },
    ):
        mark_factor_hours(conn, factor_key, valid_from)
    return True
