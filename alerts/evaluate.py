"""One evaluation of every active site's rules at a given instant.

Reads (the checks) happen outside any write transaction; each (rule, subject) is
then applied in its own short transaction (`alerts.state.apply_check`), so two
evaluators running at once interleave safely and a slow site holds no locks on
another. `now` is a parameter: tests and backfills evaluate chosen instants.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from alerts import metrics
from alerts.conditions import (
    data_quality_checks,
    obligation_checks,
    roadmap_checks,
    silent_checks,
)
from alerts.rules import RULES, Action, Check
from alerts.state import apply_check, repeat_due, resolve_unchecked
from core.logs import get_logger
from core.park.models import EnterpriseAlerts, SiteAlerts
from core.reporting import site_roadmap

log = get_logger("alerts")


@dataclass
class Evaluation:
    checks: int = 0
    fired: int = 0
    resolved: int = 0
    repeated: int = 0


@dataclass(frozen=True)
class SiteRules:
    site_id: str
    rules: SiteAlerts
    enterprises: dict[str, EnterpriseAlerts]


def _parse_rules(site_id: str, stored: dict[str, Any] | None) -> SiteRules:
    """Stored rules (defaults filled in at `config apply`); defaults when none."""
    if stored is None:
        return SiteRules(site_id, SiteAlerts(), {})
    enterprises = {
        ent: EnterpriseAlerts.model_validate(rules)
        for ent, rules in stored.get("enterprises", {}).items()
    }
    return SiteRules(site_id, SiteAlerts.model_validate(stored["site"]), enterprises)


def active_sites(conn: Connection) -> list[SiteRules]:
    rows = conn.execute(
        text(
            "SELECT s.id, r.rules FROM sites s LEFT JOIN site_alert_rules r ON r.site_id = s.id "
            "WHERE s.active ORDER BY s.id"
        )
    )
    return [_parse_rules(site_id, rules) for site_id, rules in rows]


def site_checks(conn: Connection, site: SiteRules, now: datetime) -> list[Check]:
    checks: list[Check] = []
    roadmap = site_roadmap(conn, site.site_id)
    if roadmap is not None:
        checks += roadmap_checks(conn, roadmap, site.rules, site.enterprises, now)
    checks += silent_checks(conn, site.site_id, site.rules.silent_meter, site.enterprises, now)
    checks += data_quality_checks(conn, site.site_id, site.rules.data_quality, now)
    checks += obligation_checks(conn, site.site_id, site.rules.obligation, now)
    return checks


def evaluate(engine: Engine, now: datetime, *, repeat_s: int = 0) -> Evaluation:
    """Evaluate every active site at `now`; returns what changed."""
    result = Evaluation()
    with engine.connect() as conn:
        sites = active_sites(conn)
    for site in sites:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            checks = site_checks(conn, site, now)
        result.checks += len(checks)
        for check in checks:
            with engine.begin() as conn:
                action = apply_check(conn, check, now)
            result.fired += action is Action.fire
            result.resolved += action is Action.resolve
            if action is not Action.none:
                log.info(
                    "alert_" + action.value,
                    rule=check.rule,
                    subject=check.subject,
                    value=round(check.value, 3),
                    summary=check.summary,
                )
        with engine.begin() as conn:
            result.resolved += resolve_unchecked(
                conn, site.site_id, {(c.rule, c.subject) for c in checks}, now
            )
    with engine.begin() as conn:
        result.repeated = repeat_due(conn, now, repeat_s)
    with engine.connect() as conn:
        update_gauges(conn, [s.site_id for s in sites])
    metrics.LAST_EVALUATION.set(time.time())
    return result


def update_gauges(conn: Connection, sites: list[str]) -> None:
    counts = {
        (rule, site): n
        for rule, site, n in conn.execute(
            text(
                "SELECT rule, site_id, count(*) FROM alerts WHERE state <> 'resolved' "
                "GROUP BY rule, site_id"
            )
        )
    }
    for site in sites:
        for rule in RULES:
            metrics.FIRING.labels(rule, site).set(counts.get((rule, site), 0))
