"""The four rules evaluated for one site at one instant: reads only, `Check`s out.

Roadmap windows, actuals, budgets and the forecast come from `core.reporting`, the
same code the HTTP API's roadmap status uses, so an alert and the dashboard never
disagree about a number.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from alerts.rules import (
    DATA_QUALITY,
    DRIFT,
    FORECAST,
    OBLIGATION,
    SILENT,
    Check,
    describe_over_budget,
    over_budget_thresholds,
)
from core.park.models import (
    DataQualityRule,
    DriftRule,
    EnterpriseAlerts,
    ForecastRule,
    ObligationRule,
    SilentMeterRule,
    SiteAlerts,
)
from core.reporting import SiteRoadmap, WindowStatus, roadmap_status, window_status
from reports.build import obligation
from reports.position import Position

TRAILING_7D = timedelta(days=7)
# A quarantine rate from a handful of messages says nothing; below this many
# quarantined messages in the window the rate counts as 0.
MIN_QUARANTINED = 5


def _drift_check(status: WindowStatus, rule: DriftRule, subject: str, share: float = 1.0) -> Check:
    budget = status.budget_tco2e * share
    fire, clear = over_budget_thresholds(
        budget, rule.tolerance_pct, rule.hysteresis_pct, rule.min_excess_tco2e
    )
    return Check(
        rule=DRIFT,
        subject=subject,
        site_id="",
        value=status.actual_tco2e,
        fire_above=fire,
        clear_at_or_below=clear,
        summary=describe_over_budget(status.window, status.actual_tco2e, budget),
        for_s=rule.for_s,
        details={
            "window": status.window,
            "start": status.start.isoformat(),
            "end": status.end.isoformat(),
            "budget_tco2e": budget,
        },
    )


def roadmap_checks(
    conn: Connection,
    roadmap: SiteRoadmap,
    rules: SiteAlerts,
    enterprises: dict[str, EnterpriseAlerts],
    now: datetime,
) -> list[Check]:
    """Drift per configured window (site, then enterprises with a budget share) and
    the year-end forecast."""
    site = roadmap.site_id
    status = roadmap_status(conn, roadmap, now)
    starts = {
        "trailing_7d": now - TRAILING_7D,
        "month_to_date": status.month_to_date.start,
        "year_to_date": status.year_to_date.start,
    }
    checks: list[Check] = []
    if rules.drift.enabled:
        for window in rules.drift.windows:
            ws = window_status(conn, roadmap, window.value, starts[window.value], now)
            check = _drift_check(ws, rules.drift, f"{site}/{window.value}")
            checks.append(replace(check, site_id=site))
    for ent_id, ent_rules in sorted(enterprises.items()):
        drift = ent_rules.drift
        if drift is None or not drift.enabled:
            continue
        for window in drift.windows:
            ws = window_status(
                conn, roadmap, window.value, starts[window.value], now, enterprise_id=ent_id
            )
            check = _drift_check(
                ws, drift, f"{site}/{ent_id}/{window.value}", drift.budget_share_pct / 100
            )
            checks.append(replace(check, site_id=site, enterprise_id=ent_id))
    if rules.forecast.enabled:
        forecast = status.forecast
        elapsed = now - status.year_to_date.start
        off_track = forecast_check(
            forecast.forecast_tco2e, forecast.target_tco2e, forecast.year, rules.forecast, elapsed
        )
        if off_track is not None:
            checks.append(replace(off_track, site_id=site, subject=site))
    return checks


def forecast_check(
    forecast: float, target: float, year: int, rule: ForecastRule, elapsed: timedelta
) -> Check | None:
    """None in the first `min_days` of the year, when a run rate says little."""
    if elapsed < timedelta(days=rule.min_days):
        return None
    fire, clear = over_budget_thresholds(target, rule.tolerance_pct, rule.hysteresis_pct)
    return Check(
        rule=FORECAST,
        subject="",
        site_id="",
        value=forecast,
        fire_above=fire,
        clear_at_or_below=clear,
        summary=describe_over_budget(f"{year} year-end forecast", forecast, target),
        for_s=rule.for_s,
        details={"year": year, "target_tco2e": target},
    )


_LAST_READINGS = text(
    "SELECT m.id, m.enterprise_id, coalesce(m.interval_s, m.max_gap_s) AS expected_s, r.ts "
    "FROM meters m CROSS JOIN LATERAL (SELECT ts FROM readings WHERE meter_id = m.id "
    "AND ts <= :now ORDER BY ts DESC LIMIT 1) r "
    "WHERE m.site_id = :site AND m.active ORDER BY m.id"
)


def silent_checks(
    conn: Connection,
    site_id: str,
    rule: SilentMeterRule,
    enterprises: dict[str, EnterpriseAlerts],
    now: datetime,
) -> list[Check]:
    """Meters whose last reading is older than expected interval x factor. A meter
    that never reported is not 'silent' (it is a commissioning matter)."""
    checks = []
    for meter_id, ent_id, expected_s, last_ts in conn.execute(
        _LAST_READINGS, {"site": site_id, "now": now}
    ):
        override = enterprises.get(ent_id, EnterpriseAlerts()).silent_meter
        effective = override or rule
        if not effective.enabled:
            continue
        limit = expected_s * effective.factor
        age = (now - last_ts).total_seconds()
        checks.append(
            Check(
                rule=SILENT,
                subject=f"{site_id}/{meter_id}",
                site_id=site_id,
                enterprise_id=ent_id,
                value=age,
                fire_above=limit,
                clear_at_or_below=limit,
                summary=f"meter {meter_id}: no reading for {age / 60:,.0f} min "
                f"(expected every {expected_s / 60:,.0f} min)",
                details={"meter": meter_id, "last_reading": last_ts.isoformat()},
            )
        )
    return checks


# Engine events count by when they were detected, not by their reading time: a reset
# in a backfill of last month is news now, and would never alert by reading time.
_DQ_COUNTS = text("""
SELECT
  (SELECT count(*) FROM data_quality_events e JOIN meters m ON m.id = e.meter_id
    WHERE m.site_id = :site AND e.kind = 'glitch'
      AND e.detected_at > :start AND e.detected_at <= :now) AS glitches,
  (SELECT count(*) FROM data_quality_events e JOIN meters m ON m.id = e.meter_id
    WHERE m.site_id = :site AND e.kind = 'reset'
      AND e.detected_at > :start AND e.detected_at <= :now) AS resets,
  (SELECT count(*) FROM data_quality_events e JOIN meters m ON m.id = e.meter_id
    WHERE m.site_id = :site AND e.kind = 'implausible'
      AND e.detected_at > :start AND e.detected_at <= :now) AS implausible,
  (SELECT count(*) FROM reading_conflicts c JOIN meters m ON m.id = c.meter_id
    WHERE m.site_id = :site AND c.received_at > :start AND c.received_at <= :now) AS conflicts,
  (SELECT count(*) FROM quarantine
    WHERE site_id = :site AND received_at > :start AND received_at <= :now) AS quarantined,
  (SELECT count(*) FROM readings r JOIN meters m ON m.id = r.meter_id
    WHERE m.site_id = :site AND r.ts > :start AND r.ts <= :now) AS stored
""")


def data_quality_checks(
    conn: Connection, site_id: str, rule: DataQualityRule, now: datetime
) -> list[Check]:
    """Counts over the trailing window; an alert clears at 80 % of its limit."""
    if not rule.enabled:
        return []
    start = now - timedelta(seconds=rule.window_s)
    row = conn.execute(_DQ_COUNTS, {"site": site_id, "start": start, "now": now}).one()
    seen = row.quarantined + row.stored
    rate = 100.0 * row.quarantined / seen if row.quarantined >= MIN_QUARANTINED else 0.0
    hours = rule.window_s / 3600
    metrics = (
        ("glitches", float(row.glitches), float(rule.max_glitches), "glitches"),
        ("resets", float(row.resets), float(rule.max_resets), "counter resets"),
        (
            "implausible",
            float(row.implausible),
            float(rule.max_implausible),
            "intervals above their meter's max_rate_per_h, kept out of the totals",
        ),
        ("conflicts", float(row.conflicts), float(rule.max_conflicts), "conflicting readings"),
        ("quarantine_rate", rate, rule.max_quarantine_pct, "% of messages quarantined"),
    )
    return [
        Check(
            rule=DATA_QUALITY,
            subject=f"{site_id}/{name}",
            site_id=site_id,
            value=value,
            fire_above=limit,
            clear_at_or_below=limit * 0.8,
            summary=f"{value:,.4g} {label} in the last {hours:g} h (limit {limit:g})",
            details={"metric": name, "window_s": rule.window_s},
        )
        for name, value, limit, label in metrics
    ]


def obligation_position_checks(
    position: Position, site_id: str, rule: ObligationRule
) -> list[Check]:
    """The year-end projections of TOE and tCO2e against the national list's
    thresholds: fires above the threshold, clears at threshold - hysteresis."""
    measures = (
        ("toe", position.projected_toe, position.ytd_toe, position.toe_threshold, "TOE"),
        (
            "tco2e",
            position.projected_tco2e,
            position.ytd_tco2e,
            position.tco2e_threshold,
            "tCO2e (scopes 1 + 2)",
        ),
    )
    return [
        Check(
            rule=OBLIGATION,
            subject=f"{site_id}/{position.enterprise_id}/{name}",
            site_id=site_id,
            enterprise_id=position.enterprise_id,
            value=projected,
            fire_above=threshold,
            clear_at_or_below=threshold * (1 - rule.hysteresis_pct / 100),
            summary=f"{position.enterprise_id}: {position.year} projected {projected:,.0f} "
            f"{label} ({ytd:,.1f} so far), threshold {threshold:,.0f}",
            for_s=rule.for_s,
            details={"year": position.year, "measure": name, "ytd": ytd},
        )
        for name, projected, ytd, threshold, label in measures
    ]


def obligation_checks(
    conn: Connection, site_id: str, rule: ObligationRule, now: datetime
) -> list[Check]:
    """None in the first `min_days` of the year, when a run rate says little."""
    if not rule.enabled:
        return []
    positions = obligation(conn, site_id, now=now)
    if positions and positions[0].elapsed_share * 365 < rule.min_days:
        return []
    return [c for p in positions for c in obligation_position_checks(p, site_id, rule)]
