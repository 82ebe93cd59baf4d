"""Alert conditions as pure values, and the decision each evaluation takes.

A `Check` is one evaluated condition for one (rule, subject): a value, the level
above which it breaches (`fire_above`) and the level at or below which an open
alert clears (`clear_at_or_below`, lower than `fire_above` by the hysteresis).
Between the two nothing changes, so a value wandering around the threshold
neither resolves an open alert nor re-fires it. A breach must last `for_s`
before it fires; a single evaluation back under `fire_above` restarts the clock.

No division happens here: thresholds are absolute values computed from budgets,
so a budget of 0 (a net-zero year) gives thresholds of 0, not infinities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

DRIFT = "roadmap_drift"
FORECAST = "forecast_off_track"
SILENT = "meter_silent"
DATA_QUALITY = "data_quality"
OBLIGATION = "obligation_threshold"
RULES = (DRIFT, FORECAST, SILENT, DATA_QUALITY, OBLIGATION)


@dataclass(frozen=True)
class Check:
    rule: str
    subject: str
    site_id: str
    value: float
    fire_above: float
    clear_at_or_below: float
    summary: str
    for_s: float = 0.0
    enterprise_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def breaching(self) -> bool:
        return self.value > self.fire_above

    @property
    def clear(self) -> bool:
        return self.value <= self.clear_at_or_below


class Action(StrEnum):
    none = "none"
    fire = "fire"
    resolve = "resolve"


@dataclass(frozen=True)
class Decision:
    action: Action
    breaching_since: datetime | None


def decide(
    check: Check, is_open: bool, breaching_since: datetime | None, now: datetime
) -> Decision:
    """What to do with (rule, subject) at `now`, given whether an alert is open and
    since when the condition has been breaching (None: it was not)."""
    if is_open:
        action = Action.resolve if check.clear else Action.none
        return Decision(action, breaching_since if check.breaching else None)
    if not check.breaching:
        return Decision(Action.none, None)
    since = breaching_since or now
    held = now - since >= timedelta(seconds=check.for_s)
    return Decision(Action.fire if held else Action.none, since)


def over_budget_thresholds(
    budget: float, tolerance_pct: float, hysteresis_pct: float, min_excess: float = 0.0
) -> tuple[float, float]:
    """(fire above, clear at or below) for an amount against a budget.

    Fires above budget + tolerance (and at least `min_excess` over budget); clears
    at or below budget - hysteresis. A budget of 0 fires on any amount above
    `min_excess` and clears at 0."""
    fire = max(budget * (1 + tolerance_pct / 100), budget + min_excess)
    clear = max(budget * (1 - hysteresis_pct / 100), 0.0)
    return fire, clear


def describe_over_budget(what: str, actual: float, budget: float) -> str:
    """'month_to_date: 12.3 tCO2e, budget 10.0 tCO2e (+23 %)'; no ratio for a 0 budget."""
    text = f"{what}: {actual:,.1f} tCO2e, budget {budget:,.1f} tCO2e"
    if budget > 0:
        return f"{text} ({(actual / budget - 1) * 100:+.0f} %)"
    return f"{text} (net-zero budget)"
