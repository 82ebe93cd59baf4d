"""Alert rules in the park file: defaults when absent, clear errors naming the path,
stored by `config apply` and read back (SPEC sections 4 and 7)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import Connection

from core.park.loader import ParkConfigError, parse_park
from core.park.models import DriftWindow, Park, SiteAlerts
from core.park.repository import apply_park, read_park
from tests.alerts_harness import PARK


def _issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ParkConfigError) as info:
        parse_park(data)
    return [str(i) for i in info.value.issues]


def _site_alerts(**alerts: Any) -> dict[str, Any]:
    data = copy.deepcopy(PARK)
    data["sites"][0]["alerts"] = alerts
    return data


def test_sites_without_an_alerts_section_get_the_defaults(sample_park: Park) -> None:
    data = copy.deepcopy(PARK)
    del data["sites"][0]["alerts"]
    site = parse_park(data).sites[0]
    assert site.alerts == SiteAlerts()
    assert site.alerts.drift.windows == list(DriftWindow)
    assert site.alerts.drift.for_s == 3600
    assert site.alerts.silent_meter.factor == 3.0
    assert all(s.alerts.drift.enabled for s in sample_park.sites)


def test_the_sample_park_configures_rules_and_no_secret(sample_park: Park) -> None:
    nck = next(s for s in sample_park.sites if s.id == "NCK")
    assert nck.alerts.drift.tolerance_pct > 0
    assert any(e.alerts and e.alerts.drift for e in nck.enterprises)
    assert all("secret" not in hook.url for hook in nck.alerts.webhooks)


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        ({"drift": {"tolerance_pct": -5}}, "sites[0].alerts.drift.tolerance_pct: -5"),
        ({"drift": {"for": 60}}, "sites[0].alerts.drift.for: unknown field"),
        ({"drift": {"windows": []}}, "sites[0].alerts.drift.windows: []"),
        ({"drift": {"windows": ["last_week"]}}, "sites[0].alerts.drift.windows[0]: 'last_week'"),
        (
            {"drift": {"windows": ["trailing_7d", "trailing_7d"]}},
            "sites[0].alerts.drift.windows[1]: 'trailing_7d' appears twice",
        ),
        ({"silent_meter": {"factor": 0.5}}, "sites[0].alerts.silent_meter.factor: 0.5"),
        ({"data_quality": {"window_s": 60}}, "sites[0].alerts.data_quality.window_s: 60"),
        ({"webhooks": [{"name": "x", "url": "ftp://h/"}]}, "sites[0].alerts.webhooks[0].url"),
        (
            {"webhooks": [{"name": "x", "url": "http://a/"}, {"name": "x", "url": "http://b/"}]},
            "sites[0].alerts.webhooks[1].name: duplicate webhook 'x'",
        ),
        (
            {"webhooks": [{"name": "x", "url": "http://a/", "secret": "s3cret"}]},
            "sites[0].alerts.webhooks[0].secret: unknown field",
        ),
    ],
)
def test_bad_rules_are_reported_with_their_path(alerts: dict[str, Any], expected: str) -> None:
    issues = _issues(_site_alerts(**alerts))
    assert any(i.startswith(expected) for i in issues), issues


def test_enterprise_drift_needs_a_share_and_a_site_roadmap() -> None:
    data = copy.deepcopy(PARK)
    data["sites"][0]["enterprises"][0]["alerts"] = {"drift": {"tolerance_pct": 5}}
    assert _issues(data) == [
        "sites[0].enterprises[0].alerts.drift.budget_share_pct: required field is missing"
    ]
    data["sites"][0]["enterprises"][0]["alerts"]["drift"]["budget_share_pct"] = 40
    del data["sites"][0]["roadmap"]
    assert _issues(data) == [
        "sites[0].enterprises[0].alerts.drift: an enterprise's drift needs a roadmap "
        "on its site 'ALR'"
    ]


def test_rules_are_applied_idempotently_and_read_back(conn: Connection) -> None:
    data = copy.deepcopy(PARK)
    data["sites"][0]["enterprises"][0]["alerts"] = {"drift": {"budget_share_pct": 40}}
    park = parse_park(data)
    assert apply_park(conn, park).inserted["site_alert_rules"] == 1
    assert not apply_park(conn, park).changed
    shown = read_park(conn)["sites"][0]
    assert shown["alerts"]["drift"]["windows"] == ["trailing_7d"]
    assert shown["enterprises"][0]["alerts"]["drift"]["budget_share_pct"] == 40
    data["sites"][0]["alerts"]["drift"]["tolerance_pct"] = 20
    assert apply_park(conn, parse_park(data)).updated["site_alert_rules"] == 1
