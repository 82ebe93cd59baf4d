"""The pure alert arithmetic: thresholds with hysteresis, the `for` clock, budget 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.conditions import forecast_check
from alerts.rules import Action, Check, decide, describe_over_budget, over_budget_thresholds
from core.park.models import ForecastRule

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _check(value: float, for_s: float = 600) -> Check:
    fire, clear = over_budget_thresholds(100.0, 10, 5)
    return Check("r", "s", "S", value, fire, clear, "", for_s=for_s)


def test_thresholds_with_tolerance_and_hysteresis() -> None:
    assert over_budget_thresholds(100.0, 10, 5) == pytest.approx((110.0, 95.0))
    assert over_budget_thresholds(100.0, 10, 5, min_excess=25) == pytest.approx((125.0, 95.0))


def test_budget_zero_needs_no_division() -> None:
    assert over_budget_thresholds(0.0, 10, 5) == (0.0, 0.0)
    assert over_budget_thresholds(0.0, 10, 5, min_excess=0.5) == (0.5, 0.0)
    assert (
        describe_over_budget("ytd", 3.0, 0.0)
        == "ytd: 3.0 tCO2e, budget 0.0 tCO2e (net-zero budget)"
    )
    assert describe_over_budget("ytd", 150.0, 100.0).endswith("(+50 %)")


def test_a_breach_fires_only_after_for() -> None:
    first = decide(_check(120), False, None, NOW)
    assert first.action is Action.none
    assert first.breaching_since == NOW
    later = decide(_check(120), False, NOW, NOW + timedelta(seconds=599))
    assert later.action is Action.none
    assert decide(_check(120), False, NOW, NOW + timedelta(seconds=600)).action is Action.fire
    assert decide(_check(120, for_s=0), False, None, NOW).action is Action.fire


def test_one_evaluation_under_the_threshold_restarts_the_clock() -> None:
    assert decide(_check(105), False, NOW, NOW + timedelta(hours=1)).breaching_since is None


def test_open_alert_resolves_only_at_or_below_budget_minus_hysteresis() -> None:
    assert decide(_check(105), True, NOW, NOW).action is Action.none
    assert decide(_check(96), True, NOW, NOW).action is Action.none
    assert decide(_check(95), True, NOW, NOW).action is Action.resolve
    assert decide(_check(120), True, NOW, NOW).action is Action.none


def test_forecast_waits_min_days_and_compares_with_the_target() -> None:
    rule = ForecastRule(tolerance_pct=5, hysteresis_pct=2, min_days=14)
    assert forecast_check(200.0, 100.0, 2026, rule, timedelta(days=13)) is None
    check = forecast_check(200.0, 100.0, 2026, rule, timedelta(days=20))
    assert check is not None and check.breaching
    on_track = forecast_check(98.0, 100.0, 2026, rule, timedelta(days=20))
    assert on_track is not None and on_track.clear
