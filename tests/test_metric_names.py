"""Metric names follow the Prometheus naming guide, read from /metrics of the running
components (ingest, engine, alerts, API): an application prefix, base units
(seconds, bytes, grams; rates per second), `_total` on counters and only there,
`_timestamp_seconds` for times, and no meter ids among the labels."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine

from core.park.models import Park
from core.settings import Settings
from tests.kit.broker import Broker
from tests.metrics_harness import http_get, running_components

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Units outside Prometheus' base units; "meter_hours" counts meter-hours (items), not time.
NON_BASE = re.compile(
    r"_(milli|micro|nano)?(seconds_)?(minutes|hours|days|milliseconds|microseconds|"
    r"kilograms|tonnes|kilobytes|megabytes|percent|kwh)(_|$)|_per_(minute|hour|day)(_|$)"
)
OTHER_CLIENT_FAMILIES = ("process_", "python_")
# Existing names that break the guide, to rename in their owning module; listed so a
# new violation fails at once and a rename shows up here as a stale entry.
PENDING_RENAMES: set[str] = set()
LABEL_NAMES_FORBIDDEN = {"meter", "meter_id", "topic", "payload", "key"}


@pytest.fixture
def scraped(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park
) -> Iterator[dict[str, str]]:
    """/metrics of each running component, after ingest stored and quarantined readings."""
    with running_components(park_db[0], broker, test_park) as urls:
        yield {name: http_get(url + "/metrics") or "" for name, url in urls.items()}


def _problems(name: str, kind: str, samples: list[Sample], meter_ids: set[str]) -> list[str]:
    found = []
    if not NAME.match(name):
        found.append("not snake_case")
    if not name.startswith(("emissions_", *OTHER_CLIENT_FAMILIES)):
        found.append("no emissions_ prefix")
    if NON_BASE.search(name.replace("meter_hours", "meter_items")):
        found.append("not in base units")
    if "timestamp" in name and not name.endswith("_timestamp_seconds"):
        found.append("a timestamp not in seconds")
    if kind == "counter" and any(not s.name.endswith(("_total", "_created")) for s in samples):
        found.append("a counter without _total")
    if kind != "counter" and name.endswith("_total"):
        found.append("_total on a non-counter")
    for sample in samples:
        if LABEL_NAMES_FORBIDDEN & set(sample.labels):
            found.append(f"label {sorted(LABEL_NAMES_FORBIDDEN & set(sample.labels))}")
        if meter_ids & set(sample.labels.values()):
            found.append("a meter id as a label value")
    return found


def test_metric_names_follow_the_naming_guide(scraped: dict[str, str], test_park: Park) -> None:
    meter_ids = {m.id for _, _, m in test_park.meters()}
    violations: dict[str, list[str]] = {}
    seen: set[str] = set()
    for component, body in scraped.items():
        families = list(text_string_to_metric_families(body))
        own = {f.name for f in families if f.name.startswith(f"emissions_{component}_")}
        assert own, f"{component} exports no emissions_{component}_* metric"
        for family in families:
            seen.add(family.name)
            problems = _problems(family.name, family.type, family.samples, meter_ids)
            if problems:
                violations[family.name] = problems
    assert "emissions_ingest_readings_total" in {
        s.name for f in text_string_to_metric_families(scraped["ingest"]) for s in f.samples
    }
    assert {n for n in violations if n not in PENDING_RENAMES} == set(), violations
    assert set(violations) == PENDING_RENAMES & seen, "a pending rename is done: drop it here"


def test_promtool_check_metrics_accepts_every_component(scraped: dict[str, str]) -> None:
    """The linter an SRE pipes `curl :9102/metrics` into; its verdict, not ours."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup.sh installs the prometheus package"
    for component, body in scraped.items():
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=body,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert result.returncode == 0, f"{component}: {result.stdout}{result.stderr}"
