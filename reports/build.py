"""Reports from the store: the SQL of `reports.repository` into the pure builders.

Periods are calendar years in the site's time zone; an inventory covers one year
or the two-year cycle of Decree 06 (`years=2`). Hours that have not happened yet
are not expected, so a report of the current year is complete up to `now`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from reports import repository as repo
from reports.inventory import InventoryInputs, build_inventory
from reports.model import Inventory, Period, QaQc
from reports.position import Intensity, KindTotal, Position, elapsed_share, intensity, position
from reports.submissions import ChainCheck, Change, canonical, changes, content_hash, verify_chain


class ReportError(LookupError):
    """An unknown site or enterprise: the caller's 404."""


def year_bounds(year: int, timezone: str, years: int = 1) -> tuple[datetime, datetime]:
    tz = ZoneInfo(timezone)
    start = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    return start, datetime(year + years, 1, 1, tzinfo=tz).astimezone(UTC)


def _site(conn: Connection, site: str) -> tuple[str, str]:
    row = repo.site_row(conn, site)
    if row is None:
        raise ReportError(f"site {site!r}")
    return row


def inventory(
    conn: Connection,
    site: str,
    year: int,
    *,
    years: int = 1,
    enterprise: str | None = None,
    now: datetime | None = None,
) -> Inventory:
    name, tz = _site(conn, site)
    now = now or datetime.now(UTC)
    start, end = year_bounds(year, tz, years)
    ents = repo.enterprises(conn, site, enterprise)
    if enterprise is not None and not ents:
        raise ReportError(f"enterprise {enterprise!r}")
    qaqc: dict[str | None, QaQc] = {e.id: repo.qaqc(conn, site, e.id, start, end) for e in ents}
    qaqc[None] = repo.qaqc(conn, site, enterprise, start, end)
    inputs = InventoryInputs(
        site=site,
        site_name=name,
        enterprise=enterprise,
        period=Period(first_year=year, years=years, start=start, end=end, timezone=tz),
        now=now,
        generated_at=now,
        enterprises=ents,
        meters=repo.meter_data(conn, site, enterprise, start, end),
        factors=repo.factors_used(conn, site, enterprise, start, end),
        toe_factors=repo.toe_factors(conn),
        qaqc=qaqc,
    )
    return build_inventory(inputs)


def _kind_totals(rows: list[dict[str, Any]]) -> list[KindTotal]:
    return [
        KindTotal(**{k: r[k] for k in ("kind", "scope", "consumption", "co2e_kg")}) for r in rows
    ]


def _monthly(
    conn: Connection, site: str, enterprise: str, tz: str, year: int, now: datetime
) -> dict[str, list[KindTotal]]:
    start, end = year_bounds(year, tz)
    by_month: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in repo.monthly_kinds(conn, site, enterprise, tz, start, min(end, max(now, start))):
        by_month[row["month"].astimezone(ZoneInfo(tz)).strftime("%Y-%m")].append(row)
    return {m: _kind_totals(rows) for m, rows in by_month.items()}


def obligation(
    conn: Connection, site: str, enterprise: str | None = None, now: datetime | None = None
) -> list[Position]:
    """Each enterprise's year to date and projection against both thresholds."""
    _, tz = _site(conn, site)
    now = now or datetime.now(UTC)
    year = now.astimezone(ZoneInfo(tz)).year
    start, end = year_bounds(year, tz)
    share = elapsed_share(start, end, now)
    toe = {t.kind: t for t in repo.toe_factors(conn)}
    out = []
    for ent in repo.enterprises(conn, site, enterprise):
        months = _monthly(conn, site, ent.id, tz, year, now)
        totals = [t for ts in months.values() for t in ts]
        out.append(position(ent.id, year, share, now, totals, toe))
    if enterprise is not None and not out:
        raise ReportError(f"enterprise {enterprise!r}")
    return out


def intensities(
    conn: Connection,
    site: str,
    year: int,
    enterprise: str | None = None,
    now: datetime | None = None,
) -> list[Intensity]:
    _, tz = _site(conn, site)
    now = now or datetime.now(UTC)
    start, end = year_bounds(year, tz)
    share = elapsed_share(start, end, now)
    out = [
        intensity(
            ent.id,
            year,
            share,
            _monthly(conn, site, ent.id, tz, year, now),
            repo.allocation(conn, ent.id, year),
        )
        for ent in repo.enterprises(conn, site, enterprise)
    ]
    if enterprise is not None and not out:
        raise ReportError(f"enterprise {enterprise!r}")
    return out


def chain_of(site: str, enterprise: str | None) -> str:
    return enterprise or f"site:{site}"


def submit(
    conn: Connection,
    site: str,
    year: int,
    *,
    years: int,
    enterprise: str | None,
    by: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Freeze the inventory as it is now, chained to the chain's newest submission.
    Runs in the caller's transaction; the caller commits."""
    report = inventory(conn, site, year, years=years, enterprise=enterprise, now=now)
    document = canonical(report.model_dump(mode="json"))
    chain = chain_of(site, enterprise)
    previous = repo.last_hash(conn, chain)
    digest = content_hash(document, previous)
    row = {
        "site": site,
        "enterprise": enterprise,
        "chain": chain,
        "first_year": year,
        "years": years,
        "by": by,
        "document": document,
        "hash": digest,
        "previous": previous,
    }
    submission_id = repo.insert_submission(conn, row)
    return {"id": submission_id, "content_hash": digest, "previous_hash": previous}


def verify(conn: Connection, site: str, enterprise: str | None) -> dict[str, ChainCheck]:
    """Each chain of the site (or the enterprise's one) verified from its first link."""
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in repo.submissions(conn, site, enterprise):
        chains[row["chain"]].append(row)
    return {chain: verify_chain(rows) for chain, rows in sorted(chains.items())}


def restatement(conn: Connection, row: dict[str, Any], now: datetime | None = None) -> list[Change]:
    """What the period's inventory computed now changes against the submitted one."""
    current = inventory(
        conn,
        row["site_id"],
        row["first_year"],
        years=row["years"],
        enterprise=row["enterprise_id"],
        now=now,
    )
    return changes(json.loads(row["document"]), current.model_dump(mode="json"))
