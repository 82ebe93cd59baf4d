"""What each page shows, gathered with the API's own repository and reporting
functions (so a page and the JSON API cannot disagree). Pure data: no HTML here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from api.hourly_cache import HourlyCache
from api.repository import alerts as alerts_repo
from api.repository import hourly as hourly_repo
from api.repository import meters as meters_repo
from api.repository.totals import yearly_actuals
from api.scope import Scope
from core.emissions.hours import HOUR
from core.reporting import RoadmapStatus, SiteRoadmap, budget_tco2e
from core.reporting import roadmap_status as compute_status
from core.reporting import trajectory as roadmap_line
from engine.repository import live_rates

WEEK = timedelta(days=7)


def hour_floor(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def week_ending(end: datetime) -> tuple[datetime, datetime]:
    """The 7 x 24 UTC hours before `end` (rounded up to a whole hour)."""
    b = hour_floor(end)
    if b < end:
        b += HOUR
    return b - WEEK, b


@dataclass(frozen=True)
class HourPoint:
    hour: datetime
    co2e_kg: float
    estimated: bool
    budget_kg: float | None = None


def hourly_points(
    conn: Connection,
    scope: Scope,
    start: datetime,
    end: datetime,
    cache: HourlyCache | None,
    roadmap: SiteRoadmap | None = None,
) -> list[HourPoint]:
    """Every hour of [start, end), zero where the API lists none, from the same
    rendered JSON the API serves; with the hour's budget when a roadmap is given."""
    body = json.loads(hourly_repo.hourly_json(conn, scope, start, end, cache))
    found = {datetime.fromisoformat(i["hour"]): i for i in body["items"]}
    points = []
    hour = start
    while hour < end:
        item = found.get(hour, {})
        budget = budget_tco2e(roadmap, hour, hour + HOUR) * 1000 if roadmap else None
        points.append(
            HourPoint(hour, float(item.get("co2e_kg", 0.0)), bool(item.get("estimated")), budget)
        )
        hour += HOUR
    return points


@dataclass(frozen=True)
class EnterpriseRank:
    id: str
    name: str
    mtd_tco2e: float
    share: float | None  # of the site's month to date
    last_7d_tco2e: float
    previous_7d_tco2e: float

    @property
    def drift(self) -> float | None:
        """Change of the trailing 7 days against the 7 days before (0.1 = +10 %)."""
        if self.previous_7d_tco2e <= 0:
            return None
        return self.last_7d_tco2e / self.previous_7d_tco2e - 1


def enterprise_ranks(
    conn: Connection, site: str, status: RoadmapStatus, end: datetime
) -> list[EnterpriseRank]:
    """Each enterprise's share of the site's month to date and its week-on-week drift:
    the sums of core.reporting.actual_tco2e (the enterprise rollups, hours starting
    in each window), for every enterprise in one grouped query."""
    # The month, not the year: a year-long window made the enterprise rollups (about
    # 300,000 rows a site-year) the overview's largest scan (bench/console.py).
    month = status.month_to_date
    rows = conn.execute(
        text(
            "SELECT e.id, e.name, "
            "coalesce(sum(h.co2e_kg) FILTER (WHERE h.hour >= :ya AND h.hour < :yb), 0), "
            "coalesce(sum(h.co2e_kg) FILTER (WHERE h.hour >= :la AND h.hour < :lb), 0), "
            "coalesce(sum(h.co2e_kg) FILTER (WHERE h.hour >= :pa AND h.hour < :la), 0) "
            "FROM enterprises e LEFT JOIN enterprise_hourly h ON h.enterprise_id = e.id "
            "AND h.site_id = e.site_id AND h.hour >= least(:ya, :pa) "
            "AND h.hour < greatest(:yb, :lb) "
            "WHERE e.site_id = :s AND e.active GROUP BY e.id, e.name ORDER BY e.id"
        ),
        {
            "s": site,
            "ya": month.start,
            "yb": month.end,
            "la": end - WEEK,
            "lb": end,
            "pa": end - 2 * WEEK,
        },
    ).all()
    ranks = []
    for ent_id, name, mtd_kg, last_kg, prev_kg in rows:
        mine = float(mtd_kg) / 1000.0
        share = mine / month.actual_tco2e if month.actual_tco2e > 0 else None
        ranks.append(
            EnterpriseRank(ent_id, name, mine, share, float(last_kg) / 1000, float(prev_kg) / 1000)
        )
    return ranks


@dataclass
class Overview:
    roadmap: SiteRoadmap
    status: RoadmapStatus
    live_kg_per_h: float
    years: list[int] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    actuals: list[float | None] = field(default_factory=list)
    week: list[HourPoint] = field(default_factory=list)
    by_share: list[EnterpriseRank] = field(default_factory=list)
    by_drift: list[EnterpriseRank] = field(default_factory=list)
    open_alerts: list[dict[str, Any]] = field(default_factory=list)


def overview(
    conn: Connection,
    scope: Scope,
    roadmap: SiteRoadmap,
    now: datetime,
    week_end: datetime,
    cache: HourlyCache | None,
) -> Overview:
    site = scope.site_id
    status = compute_status(conn, roadmap, now)
    live = sum(rate for s, _, rate in live_rates(conn, now) if s == site)
    actual_by_year = yearly_actuals(conn, site, roadmap.timezone)
    line = roadmap_line(roadmap, until=now.astimezone(roadmap.tz).year)
    a, b = week_ending(week_end)
    ranks = enterprise_ranks(conn, site, status, b)
    return Overview(
        roadmap=roadmap,
        status=status,
        live_kg_per_h=live,
        years=[y for y, _ in line],
        targets=[t for _, t in line],
        actuals=[actual_by_year.get(y) for y, _ in line],
        week=hourly_points(conn, scope, a, b, cache, roadmap),
        by_share=sorted(ranks, key=lambda r: -(r.share or 0)),
        by_drift=sorted(
            ranks, key=lambda r: (r.drift is None, -(r.drift or 0.0), -r.last_7d_tco2e)
        ),
        open_alerts=alerts_repo.list_alerts(conn, site, "open", None, 50, 0),
    )


def meters_quality(
    conn: Connection, scope: Scope, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The API's meter list, plus each meter's estimated share of its hours in
    [start, end) and whether a meter_silent alert is open for it."""
    _, rows = meters_repo.list_meters(conn, scope.site_id, scope.enterprise_id, 1000, 0)
    shares: dict[str, float] = dict(
        conn.execute(
            text(
                "SELECT meter_id, avg(CASE WHEN estimated THEN 1.0 ELSE 0.0 END) "
                "FROM hourly_emissions WHERE site_id = :s AND hour >= :a AND hour < :b "
                "GROUP BY meter_id"
            ),
            {"s": scope.site_id, "a": start, "b": end},
        ).all()
    )
    silent = {
        a["subject"]
        for a in alerts_repo.list_alerts(conn, scope.site_id, "open", scope.enterprise_id, 1000, 0)
        if a["rule"] == "meter_silent"
    }
    for row in rows:
        share = shares.get(row["id"])
        row["estimated_share"] = None if share is None else float(share)
        row["silent"] = row["id"] in silent
    return rows


def factor_registry(conn: Connection) -> list[dict[str, Any]]:
    """Every factor with its published values (oldest first), each value's source and
    how many meter-hours are priced with it: a restated value's hours move to the new
    one once the engine has recomputed them."""
    factors = [
        dict(r._mapping)
        for r in conn.execute(
            text("SELECT key, unit, description FROM emission_factors ORDER BY key")
        )
    ]
    values = conn.execute(
        text(
            "SELECT v.id, v.factor_key, v.valid_from, v.published_at, v.kgco2e_per_unit, "
            "v.source, v.updated_at, (SELECT count(*) FROM hourly_emissions h "
            "WHERE h.factor_value_id = v.id) AS hours FROM emission_factor_values v "
            "ORDER BY v.factor_key, v.valid_from"
        )
    ).all()
    for f in factors:
        f["values"] = [dict(v._mapping) for v in values if v.factor_key == f["key"]]
    return factors
