"""The park file's report inputs: production meters, TOE factors, accuracy and
uncertainty, allocations; their checks, their storage, and the simulator's
production meters."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, text

from core.meter_kinds import MeterKind
from core.park.loader import ParkConfigError, parse_park
from core.park.models import Park
from core.park.repository import apply_park
from simulator import plant
from tests.reports_support import park_dict


def _issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ParkConfigError) as caught:
        parse_park(data)
    return [str(i) for i in caught.value.issues]


def test_sample_park_has_report_inputs(sample_park: Park) -> None:
    assert {t.kind for t in sample_park.toe_factors} == {
        MeterKind.electricity,
        MeterKind.diesel,
        MeterKind.lpg,
        MeterKind.natural_gas,
    }
    assert all("3505/BCT-KHCN" in t.source for t in sample_park.toe_factors)
    assert all(f.uncertainty_pct is not None for f in sample_park.factors if "OUTPUT" not in f.key)
    makers = [e for s in sample_park.sites for e in s.enterprises if e.industry != "logistics"]
    producing = {e.id for e in makers for m in e.meters if m.kind.value.startswith("production")}
    assert {"NCK-STL1", "NCK-STL2", "NCK-GAR1", "NCK-ELE1", "NCK-FOOD1", "NCK-PLA1"} <= producing
    stl1 = next(e for e in makers if e.id == "NCK-STL1")
    assert stl1.allocations[0].unit == "t"


def test_bad_report_inputs_are_refused_with_their_path() -> None:
    data = park_dict()
    data["factors"][3]["values"][0]["kgco2e_per_unit"] = 0.1  # OUT-T priced
    data["toe_factors"].append(dict(data["toe_factors"][0]))  # electricity twice
    data["toe_factors"].append(
        {"kind": "production", "unit": "t", "toe_per_unit": 1, "source": "x"}
    )
    data["toe_factors"].append({"kind": "lpg", "unit": "kWh", "toe_per_unit": 1, "source": "x"})
    rpt_b = data["sites"][0]["enterprises"][1]
    rpt_b["allocations"] = [
        {"year": 2025, "tco2e_per_unit": 1, "unit": "t"},
        {"year": 2025, "tco2e_per_unit": 1, "unit": "t"},
    ]
    issues = _issues(data)
    assert any(
        i.startswith("sites[0].enterprises[0].meters[2].factor:") and "no CO2e" in i for i in issues
    )
    assert "toe_factors[2].kind: 'electricity' appears twice" in issues
    assert "toe_factors[3].kind: production output is not energy" in issues
    assert "toe_factors[4].unit: 'kWh' is not a unit for 'lpg'" in issues
    assert "sites[0].enterprises[1].allocations[1].year: 2025 appears twice" in issues
    assert any(i.startswith("sites[0].enterprises[1].allocations[0].unit:") for i in issues)
    inaccurate = park_dict()
    inaccurate["sites"][0]["enterprises"][1]["meters"][0]["accuracy_pct"] = 120
    (issue,) = _issues(inaccurate)
    assert issue.startswith("sites[0].enterprises[1].meters[0].accuracy_pct")


def test_report_inputs_are_stored_idempotently(conn: Connection) -> None:
    park = Park.model_validate(park_dict())
    first = apply_park(conn, park)
    assert first.inserted["toe_factors"] == 2 and first.inserted["production_allocations"] == 1
    assert not apply_park(conn, park).changed
    stored = conn.execute(
        text("SELECT accuracy_pct FROM meters WHERE id IN ('A-E', 'A-D') ORDER BY id")
    ).scalars()
    assert list(stored) == [None, 1.0]  # A-D, A-E
    uncertainty = conn.execute(
        text("SELECT uncertainty_pct FROM emission_factors WHERE key = 'GRID'")
    ).scalar_one()
    assert uncertainty == 5.0
    fewer = copy.deepcopy(park_dict())
    fewer["toe_factors"] = fewer["toe_factors"][:1]
    fewer["sites"][0]["enterprises"][0]["allocations"] = []
    removed = apply_park(conn, Park.model_validate(fewer))
    assert removed.deactivated["toe_factors"] == 1
    assert removed.deactivated["production_allocations"] == 1


def test_simulated_production_follows_the_production_profile(sample_park: Park) -> None:
    site = sample_park.sites[0]
    stl1 = next(e for e in site.enterprises if e.id == "NCK-STL1")
    model = plant.build(site, stl1)
    meter = model.meters["NCK-STL1-P-01"]
    assert meter.scale == 2.5  # "~2.5 t/h" in its description: the week's mean
    tz = ZoneInfo(site.timezone)
    workday = plant.state(model, 1, datetime(2025, 6, 4, 10, tzinfo=tz).timestamp())
    night = plant.state(model, 1, datetime(2025, 6, 4, 3, tzinfo=tz).timestamp())
    assert plant.flow(model, meter, workday) > plant.flow(model, meter, night) >= 0
