"""Park file validation: every bad input is refused with its exact path, never a traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.meter_kinds import MeterKind
from core.park.loader import ParkConfigError, load_park, load_yaml, parse_park
from tests.kit.paths import SAMPLE_PARK

BASE: dict[str, Any] = {
    "default_factors": {"electricity": "GRID", "water": "WATER"},
    "factors": [
        {
            "key": "GRID",
            "unit": "kWh",
            "values": [
                {
                    "valid_from": "2023-01-01T00:00:00+07:00",
                    "kgco2e_per_unit": 0.6592,
                    "source": "test",
                },
            ],
        },
        {
            "key": "WATER",
            "unit": "m3",
            "values": [
                {
                    "valid_from": "2014-01-01T00:00:00+07:00",
                    "kgco2e_per_unit": 0.1913,
                    "source": "test",
                },
            ],
        },
    ],
    "sites": [
        {
            "id": "NCK",
            "name": "Test park",
            "timezone": "Asia/Ho_Chi_Minh",
            "roadmap": {
                "baseline": {"year": 2020, "tco2e": 1000},
                "milestones": [
                    {"year": 2025, "reduction_pct": 50},
                    {"year": 2030, "reduction_pct": 100},
                ],
            },
            "enterprises": [
                {
                    "id": "E1",
                    "name": "Steel",
                    "industry": "steel_structures",
                    "meters": [
                        {
                            "id": "E1-M1",
                            "kind": "electricity",
                            "unit": "kWh",
                            "reading": "counter",
                            "rollover": 1000000,
                            "commissioned_at": "2023-01-01T00:00:00+07:00",
                        },
                        {
                            "id": "E1-W1",
                            "kind": "water",
                            "unit": "m3",
                            "reading": "delta",
                            "interval_s": 900,
                            "commissioned_at": "2023-01-01T00:00:00+07:00",
                        },
                    ],
                },
            ],
        },
    ],
}

M0 = "sites[0].enterprises[0].meters[0]"
M1 = "sites[0].enterprises[0].meters[1]"


def meter0(d: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = d["sites"][0]["enterprises"][0]["meters"][0]
    return m


def meter1(d: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = d["sites"][0]["enterprises"][0]["meters"][1]
    return m


def _set(
    getter: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: object
) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        getter(d)[key] = value

    return mutate


def _site(d: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = d["sites"][0]
    return s


def _duplicate_meter(d: dict[str, Any]) -> None:
    meter1(d)["id"] = "E1-M1"


def _second_enterprise_same_id(d: dict[str, Any]) -> None:
    ents = _site(d)["enterprises"]
    ents.append({**copy.deepcopy(ents[0]), "meters": []})


def _milestone_before_baseline(d: dict[str, Any]) -> None:
    _site(d)["roadmap"]["milestones"][0]["year"] = 2019


def _no_sites(d: dict[str, Any]) -> None:
    d["sites"] = []


def _unknown_default_factor(d: dict[str, Any]) -> None:
    d["default_factors"]["electricity"] = "NOPE"


def _factor_value_twice(d: dict[str, Any]) -> None:
    values = d["factors"][0]["values"]
    values.append(dict(values[0]))


BAD_INPUTS: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown unit", _set(meter0, "unit", "kWhh"), f"{M0}.unit", "'kWhh' is not a known unit"),
    ("unknown kind", _set(meter0, "kind", "gas"), f"{M0}.kind", "'gas'"),
    ("bad reading type", _set(meter0, "reading", "cumulative"), f"{M0}.reading", "'cumulative'"),
    ("negative rollover", _set(meter0, "rollover", -5), f"{M0}.rollover", "greater than 0"),
    ("NaN rollover", _set(meter0, "rollover", float("nan")), f"{M0}.rollover", "finite"),
    (
        "naive timestamp",
        _set(meter0, "commissioned_at", "2023-01-01T00:00:00"),
        f"{M0}.commissioned_at",
        "timezone",
    ),
    (
        "not a timestamp",
        _set(meter0, "commissioned_at", "yesterday"),
        f"{M0}.commissioned_at",
        "'yesterday'",
    ),
    ("unknown field", _set(meter0, "colour", "red"), f"{M0}.colour", "unknown field"),
    ("missing field", lambda d: meter0(d).pop("reading"), f"{M0}.reading", "missing"),
    (
        "delta without interval",
        lambda d: meter1(d).pop("interval_s"),
        f"{M1}.interval_s",
        "required for a delta meter",
    ),
    (
        "counter with interval",
        _set(meter0, "interval_s", 60),
        f"{M0}.interval_s",
        "only delta meters",
    ),
    (
        "delta with rollover",
        _set(meter1, "rollover", 1000),
        f"{M1}.rollover",
        "only counter meters roll over",
    ),
    (
        "unit of the wrong dimension",
        _set(meter0, "unit", "m3"),
        f"{M0}.unit",
        "'m3' does not convert to 'kWh'",
    ),
    ("unknown factor", _set(meter0, "factor", "COAL"), f"{M0}.factor", "unknown factor 'COAL'"),
    (
        "no factor for kind",
        _set(meter0, "kind", "diesel"),
        f"{M0}.factor",
        "no default_factors entry",
    ),
    ("duplicate meter id", _duplicate_meter, f"{M1}.id", "duplicate meter id 'E1-M1'"),
    (
        "duplicate enterprise id",
        _second_enterprise_same_id,
        "sites[0].enterprises[1].id",
        "duplicate enterprise id 'E1'",
    ),
    (
        "bad time zone",
        _set(_site, "timezone", "Asia/Haiphong"),
        "sites[0].timezone",
        "not a known IANA time zone",
    ),
    ("site id with topic wildcard", _set(_site, "id", "NCK/#"), "sites[0].id", "'NCK/#'"),
    (
        "milestone before baseline",
        _milestone_before_baseline,
        "sites[0].roadmap.milestones[0].year",
        "must come after 2020",
    ),
    (
        "reduction over 100 %",
        lambda d: _site(d)["roadmap"]["milestones"][1].update(reduction_pct=120),
        "sites[0].roadmap.milestones[1].reduction_pct",
        "less than or equal",
    ),
    ("no sites", _no_sites, "sites", "at least 1"),
    (
        "unknown default factor",
        _unknown_default_factor,
        "default_factors.electricity",
        "unknown factor 'NOPE'",
    ),
    (
        "factor value given twice",
        _factor_value_twice,
        "factors[0].values[1].valid_from",
        "appears twice",
    ),
    (
        "negative factor",
        lambda d: d["factors"][0]["values"][0].update(kgco2e_per_unit=-1),
        "factors[0].values[0].kgco2e_per_unit",
        "greater than or equal to 0",
    ),
    (
        "sub-meter of an unknown meter",
        _set(meter0, "parent", "E9-M1"),
        f"{M0}.parent",
        "'E9-M1' is not another meter of enterprise 'E1'",
    ),
    (
        "sub-meter of another kind",
        _set(meter1, "parent", "E1-M1"),
        f"{M1}.parent",
        "must be a main meter of the same kind",
    ),
    (
        "meter names another site",
        _set(meter0, "site", "DEEPC"),
        f"{M0}.site",
        "'DEEPC' differs from its site 'NCK'",
    ),
]


def test_base_is_valid() -> None:
    park = parse_park(copy.deepcopy(BASE))
    assert [m.id for _, _, m in park.meters()] == ["E1-M1", "E1-W1"]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [pytest.param(m, p, f, id=name) for name, m, p, f in BAD_INPUTS],
)
def test_bad_input_is_refused_with_its_path(
    mutate: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ParkConfigError) as info:
        parse_park(data)
    matching = [i for i in info.value.issues if i.path == path]
    assert matching, f"no issue at {path}: {info.value}"
    assert any(fragment in i.message for i in matching), str(info.value)


def test_at_least_fifteen_distinct_kinds_of_bad_input() -> None:
    assert len({name for name, *_ in BAD_INPUTS}) >= 15


def test_yaml_duplicate_key_and_syntax_errors_are_reported() -> None:
    with pytest.raises(ParkConfigError, match="duplicate key 'sites'"):
        load_yaml("sites: []\nsites: []\n")
    with pytest.raises(ParkConfigError, match="not valid YAML"):
        load_yaml("sites: [\n")


def test_unquoted_yaml_timestamp_without_offset_is_refused() -> None:
    data = load_yaml(
        yaml.safe_dump(BASE).replace("'2023-01-01T00:00:00+07:00'", "2023-01-01 00:00:00")
    )
    with pytest.raises(ParkConfigError, match="timezone"):
        parse_park(data)


def test_sample_park_is_valid_and_realistic() -> None:
    park = load_park(SAMPLE_PARK)
    meters = [m for _, _, m in park.meters()]
    kinds = {m.kind.value for m in meters}
    assert 50 <= len(meters) <= 70
    assert sum(len(s.enterprises) for s in park.sites) >= 10
    assert {"electricity", "solar", "water", "wastewater", "diesel", "lpg"} <= kinds
    assert any(m.rollover for m in meters)
    assert any(m.reading == "delta" for m in meters)
    assert any(m.parent for m in meters)
    grid = next(f for f in park.factors if f.key == park.default_factors[MeterKind.electricity])
    by_year = {v.valid_from.year: v.kgco2e_per_unit for v in grid.values}
    assert by_year[2022] == pytest.approx(0.6766)
    assert by_year[2023] == pytest.approx(0.6592)


def test_cli_validate_prints_paths_not_tracebacks(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    meter0(data)["unit"] = "kWhh"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "config", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"{M0}.unit: 'kWhh' is not a known unit" in result.stderr
    assert "Traceback" not in result.stderr
