"""Alert evaluation on the real store: drift fires after `for`, resolves only under
budget minus hysteresis, does not flap, stays single under concurrent evaluators;
silent meters; data quality; acknowledgement (SPEC section 7)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from alerts.evaluate import evaluate
from alerts.state import AckOutcome, acknowledge
from core.settings import Settings
from tests.alerts_harness import (
    SITE,
    T0,
    add_reading,
    alert_db,
    events,
    open_alerts,
    park_with,
    set_enterprise_hourly,
    set_level,
)

INTERVAL = timedelta(minutes=10)  # the evaluation schedule the tests play through
FOR = timedelta(hours=1)  # drift `for_s` in the harness park
SUBJECT = f"{SITE}/trailing_7d"


@pytest.fixture
def db(database_factory: Callable[[], Settings]) -> Iterator[Engine]:
    with alert_db(database_factory) as (_, engine):
        yield engine


def _drift(engine: Engine) -> list[tuple[int, str, str, str]]:
    return open_alerts(engine, "roadmap_drift")


def _run_until_fired(engine: Engine, start: datetime, limit: timedelta) -> datetime:
    t = start
    while t <= start + limit:
        evaluate(engine, t)
        if _drift(engine):
            return t
        t += INTERVAL
    raise AssertionError(f"no drift alert within {limit}")


def test_twice_the_budget_fires_within_for_plus_one_interval_and_resolves_with_hysteresis(
    db: Engine,
) -> None:
    set_level(db, 1.0, T0)
    evaluate(db, T0)
    assert _drift(db) == []

    set_level(db, 2.0, T0 + INTERVAL)  # late data: the whole week was at twice the budget
    fired = _run_until_fired(db, T0 + INTERVAL, FOR + 2 * INTERVAL)
    assert FOR <= fired - (T0 + INTERVAL) <= FOR + INTERVAL
    [(alert_id, _, subject, state)] = _drift(db)
    assert (subject, state) == (SUBJECT, "firing")
    with db.connect() as conn:
        value, threshold = conn.execute(
            text("SELECT value, threshold FROM alerts WHERE id = :a"), {"a": alert_id}
        ).one()
    assert value == pytest.approx(2 * 168, rel=0.01)  # tCO2e over 7 days (+ the current hour)
    assert threshold == pytest.approx(1.1 * 168)

    # Under budget, but not by the hysteresis margin (5 %): stays open.
    t = fired
    for _ in range(6):
        t += INTERVAL
        set_level(db, 0.97, t)
        evaluate(db, t)
    assert [a[0] for a in _drift(db)] == [alert_id]

    t += INTERVAL
    set_level(db, 0.90, t)
    evaluate(db, t)
    assert _drift(db) == []
    assert events(db, alert_id) == ["firing", "resolved"]


def test_oscillation_around_the_threshold_does_not_flap(db: Engine) -> None:
    # Before firing: breaching every other evaluation never lasts `for`.
    t = T0
    for i in range(24):
        set_level(db, 1.12 if i % 2 else 1.08, t)
        evaluate(db, t)
        t += INTERVAL
    assert _drift(db) == []

    set_level(db, 2.0, t)
    fired = _run_until_fired(db, t, FOR + INTERVAL)
    # After firing: around the fire threshold, above budget minus hysteresis.
    t = fired
    for i in range(36):
        t += INTERVAL
        set_level(db, 1.12 if i % 2 else 0.97, t)
        evaluate(db, t)
    assert len(_drift(db)) == 1
    assert events(db) == ["firing"]
    with db.connect() as conn:
        outbox = conn.execute(text("SELECT count(*) FROM alert_outbox")).scalar_one()
    assert outbox == 1


def test_two_evaluators_at_once_keep_one_open_alert(db: Engine) -> None:
    set_level(db, 2.0, T0 + timedelta(days=1))
    instants = [T0 + i * INTERVAL for i in range(10)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def evaluator() -> None:
        try:
            for t in instants:
                barrier.wait(timeout=30)
                evaluate(db, t)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert [(a[2], a[3]) for a in _drift(db)] == [(SUBJECT, "firing")]
    assert events(db) == ["firing"]
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alert_outbox")).scalar_one() == 1


def test_silent_meter_fires_and_resolves_when_it_reports_again(db: Engine) -> None:
    last = T0 - timedelta(minutes=1)
    add_reading(db, "ALR-M1", last, 100.0)  # max_gap_s 900 x factor 3 = 45 min
    evaluate(db, last + timedelta(minutes=44))
    assert open_alerts(db, "meter_silent") == []
    evaluate(db, last + timedelta(minutes=46))
    [(alert_id, _, subject, state)] = open_alerts(db, "meter_silent")
    assert (subject, state) == (f"{SITE}/ALR-M1", "firing")  # ALR-M2 never reported: no alert
    add_reading(db, "ALR-M1", last + timedelta(minutes=50), 101.0)
    evaluate(db, last + timedelta(minutes=51))
    assert open_alerts(db, "meter_silent") == []
    assert events(db, alert_id) == ["firing", "resolved"]


def _reset_found(conn: Connection, at: datetime, found: datetime) -> None:
    """A counter reset of the site's meter at `at`, which the engine found at `found`."""
    conn.execute(
        text(
            "INSERT INTO data_quality_events (meter_id, ts, kind, detected_at) "
            "VALUES ('ALR-M1', :ts, 'reset', :found)"
        ),
        {"ts": at, "found": found},
    )


def test_data_quality_resets_and_quarantine_rate(db: Engine) -> None:
    with db.begin() as conn:
        for h in range(3):
            _reset_found(conn, T0 - timedelta(hours=h + 1), T0 - timedelta(hours=h + 1))
        for n in range(6):
            conn.execute(
                text(
                    "INSERT INTO quarantine (received_at, topic, site_id, reason, payload, "
                    "payload_sha256) VALUES (:ts, 't', :s, 'not_json', :p, sha256(:p))"
                ),
                {"ts": T0 - timedelta(minutes=n + 1), "s": SITE, "p": f"x{n}".encode()},
            )
    for m in range(10):
        add_reading(db, "ALR-M1", T0 - timedelta(minutes=5 * m), float(1000 - m))
    evaluate(db, T0)
    subjects = {a[2] for a in open_alerts(db, "data_quality")}
    assert subjects == {f"{SITE}/resets", f"{SITE}/quarantine_rate"}
    evaluate(db, T0 + timedelta(days=2))  # the trailing day is clean again
    assert open_alerts(db, "data_quality") == []


def test_data_quality_counts_events_by_when_they_were_detected(db: Engine) -> None:
    """Three resets in a backfill of last month, found now: they alert now, not never."""
    with db.begin() as conn:
        for h in range(3):
            _reset_found(conn, T0 - timedelta(days=30, hours=h), T0 - timedelta(minutes=h + 1))
    evaluate(db, T0)
    assert f"{SITE}/resets" in {a[2] for a in open_alerts(db, "data_quality")}


def test_acknowledged_alert_stays_open_is_not_repeated_and_resolves(db: Engine) -> None:
    set_level(db, 2.0, T0 + timedelta(days=1))
    fired = _run_until_fired(db, T0, FOR + INTERVAL)
    [(alert_id, _, _, _)] = _drift(db)

    evaluate(db, fired + timedelta(hours=25), repeat_s=86_400)  # unacknowledged: repeated
    assert events(db, alert_id) == ["firing", "firing"]

    with db.begin() as conn:
        result = acknowledge(conn, alert_id, "operator@park", now=fired + timedelta(hours=26))
    assert result.outcome is AckOutcome.acknowledged
    with db.begin() as conn:
        assert acknowledge(conn, alert_id, "someone").outcome is AckOutcome.already_acknowledged
    evaluate(db, fired + timedelta(days=3), repeat_s=86_400)
    assert [(a[0], a[3]) for a in _drift(db)] == [(alert_id, "acknowledged")]
    assert events(db, alert_id) == ["firing", "firing", "acknowledged"]

    t = fired + timedelta(days=3, hours=1)
    set_level(db, 0.5, t)
    evaluate(db, t, repeat_s=86_400)
    assert _drift(db) == []
    assert events(db, alert_id) == ["firing", "firing", "acknowledged", "resolved"]
    with db.begin() as conn:
        assert acknowledge(conn, alert_id, "late").outcome is AckOutcome.resolved
        assert acknowledge(conn, 999_999, "nobody").outcome is AckOutcome.not_found


def test_net_zero_year_budget_zero_fires_on_any_emission_and_clears_at_zero(
    database_factory: Callable[[], Settings],
) -> None:
    park = park_with(drift={"windows": ["trailing_7d", "month_to_date"], "for_s": 0})
    park["sites"][0]["roadmap"]["milestones"] = [{"year": 2026, "reduction_pct": 100}]
    with alert_db(database_factory, park) as (_, engine):
        set_level(engine, 0.001, T0)  # 1 kg/h against a budget of 0
        evaluate(engine, T0)
        alerts = open_alerts(engine, "roadmap_drift")
        assert {a[2] for a in alerts} == {f"{SITE}/trailing_7d", f"{SITE}/month_to_date"}
        with engine.connect() as conn:
            summaries = conn.execute(text("SELECT summary, threshold FROM alerts")).all()
        assert all(s.endswith("(net-zero budget)") and t == 0 for s, t in summaries)
        set_level(engine, 0.0, T0 + timedelta(hours=1))
        evaluate(engine, T0 + timedelta(hours=1))
        assert open_alerts(engine, "roadmap_drift") == []


def test_enterprise_drift_against_its_share_of_the_budget(
    database_factory: Callable[[], Settings],
) -> None:
    park = park_with(drift={"enabled": False})
    park["sites"][0]["enterprises"][0]["alerts"] = {
        "drift": {"budget_share_pct": 40, "windows": ["trailing_7d"], "for_s": 0}
    }
    with alert_db(database_factory, park) as (_, engine):
        start = T0 - timedelta(days=8)
        set_enterprise_hourly(engine, "ALR-E1", start, T0, 420.0)  # 105 % of 400 kg/h
        evaluate(engine, T0)
        assert open_alerts(engine, "roadmap_drift") == []
        set_enterprise_hourly(engine, "ALR-E1", start, T0, 600.0)  # 150 %
        evaluate(engine, T0 + timedelta(minutes=1))
        [(_, _, subject, _)] = open_alerts(engine, "roadmap_drift")
        assert subject == f"{SITE}/ALR-E1/trailing_7d"
        with engine.connect() as conn:
            enterprise = conn.execute(text("SELECT enterprise_id FROM alerts")).scalar_one()
        assert enterprise == "ALR-E1"
