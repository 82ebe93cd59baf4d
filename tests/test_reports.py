"""Reports on the real store against a small park computed by hand
(tests/reports_support.py): inventory, XLSX, HTML, obligation, intensity,
submissions and restatements."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator

import pytest
from openpyxl import load_workbook
from sqlalchemy import Connection, Engine, create_engine, text

from alerts.evaluate import evaluate
from api.inventory import build_inventory as build_monthly_inventory
from api.scope import Scope
from core import migrate
from core.park.models import Park
from core.park.repository import apply_park
from core.settings import Settings
from engine.service import refresh_until_clean
from reports import build
from reports import repository as report_repo
from reports.html import inventory_html
from reports.model import Inventory, SourceLine
from reports.xlsx import SHEETS, inventory_xlsx
from tests.reports_support import T0, H, load, park_dict

NOW = T0 + 10 * H
REL = 1e-9
# Share of 2025 (local) elapsed at NOW: 1 Jan 00:00 +07 is 31 Dec 17:00 UTC.
SHARE = (59 * 24 + 7 + 10) / 8760


def _engine(database_factory: Callable[[], Settings]) -> tuple[Engine, Settings]:
    settings = database_factory()
    engine = create_engine(settings.database_url)
    migrate.upgrade(engine)
    load(engine, settings.libpq_url)
    return engine, settings


@pytest.fixture(scope="module")
def small(database_factory: Callable[[], Settings]) -> Iterator[Engine]:
    engine, _ = _engine(database_factory)
    yield engine
    engine.dispose()


@pytest.fixture
def db(small: Engine) -> Iterator[Connection]:
    with small.connect() as conn:
        yield conn


def close(a: object, b: float) -> bool:
    """a (a report figure or a cell read back) is a number within 1e-9 relative of b."""
    return isinstance(a, int | float) and math.isclose(a, b, rel_tol=REL)


def _source(sources: list[SourceLine], kind: str) -> SourceLine:
    return next(s for s in sources if s.kind == kind)


def test_enterprise_inventory_by_hand(db: Connection) -> None:
    report = build.inventory(db, "RPT", 2025, enterprise="RPT-A", now=NOW)
    assert [e.id for e in report.enterprises] == ["RPT-A"]
    a = report.enterprises[0]
    grid, diesel = _source(a.sources, "electricity"), _source(a.sources, "diesel")
    assert (grid.scope, grid.consumption, grid.unit, grid.co2e_kg) == (2, 1000.0, "kWh", 500.0)
    assert close(grid.toe, 0.1543)
    assert close(grid.uncertainty_pct, math.sqrt(1**2 + 5**2))
    assert (diesel.scope, diesel.consumption, diesel.co2e_kg) == (1, 100.0, 200.0)
    assert close(diesel.toe, 0.088)
    assert close(diesel.uncertainty_pct, math.sqrt(1**2 + 3**2))  # default accuracy 1 %
    t = report.totals
    assert t.co2e_kg == 700.0 and t.by_scope_co2e_kg == {"1": 200.0, "2": 500.0, "3": 0.0}
    assert close(t.toe, 0.1543 + 0.088)
    assert close(t.uncertainty_pct, math.sqrt((200 * 10**0.5) ** 2 + (500 * 26**0.5) ** 2) / 700)
    # A-E: 10 hours expected, 3 estimated (the 04:00-07:00 gap); A-D complete.
    assert (t.expected_hours, t.measured_hours, t.estimated_hours, t.missing_hours) == (
        20,
        17,
        3,
        0,
    )
    assert t.completeness == 17 / 20
    assert [(p.kind, p.unit, p.quantity) for p in a.production] == [("production", "t", 25.0)]
    assert a.qaqc.quarantined_by_reason == {"invalid": 2}
    assert a.qaqc.conflicts == 0 and a.qaqc.events_by_kind == {"long_gap": 1}
    assert {(f.key, f.kgco2e_per_unit, f.uncertainty_pct) for f in report.factors} == {
        ("GRID", 0.5, 5.0),
        ("DSL", 2.0, 3.0),
    }
    assert [t.kind for t in report.toe_factors] == ["diesel", "electricity"]
    assert report.notes == [
        "accuracy class not in the park file, the kind's default used: A-D, A-P"
    ]


def test_park_inventory_by_hand(db: Connection) -> None:
    report = build.inventory(db, "RPT", 2025, now=NOW)
    assert [e.id for e in report.enterprises] == ["RPT-A", "RPT-B", "RPT-C"]
    b = report.enterprises[1]
    water = _source(b.sources, "water")
    assert (water.scope, water.consumption) == (3, 20.0) and close(water.co2e_kg, 4.0)
    assert water.toe == 0.0 and water.factor_uncertainty_pct == 0.0
    assert close(water.uncertainty_pct, 2.0)  # default water accuracy, factor U unknown
    assert close(b.totals.uncertainty_pct, math.sqrt(250**2 * 29 + (4 * 2) ** 2) / 254)
    assert b.qaqc.events_by_kind == {"glitch": 1} and b.qaqc.conflicts == 1
    grid = _source(report.sources, "electricity")
    assert grid.consumption == 2_001_500.0 and grid.co2e_kg == 1_000_750.0
    u_ad = math.sqrt(1000**2 + (500 * 2) ** 2 + 2_000_000**2) / 2_001_500
    assert close(grid.activity_uncertainty_pct, u_ad)
    assert close(grid.uncertainty_pct, math.sqrt(u_ad**2 + 25))
    t = report.totals
    assert t.co2e_kg == 1_000_954.0 and close(t.tco2e, 1000.954)
    assert close(t.toe, 2_001_500 * 0.0001543 + 100 * 0.00088)
    expected_u = math.sqrt(200**2 * 10 + 1_000_750**2 * (u_ad**2 + 25) + 8**2) / 1_000_954
    assert close(t.uncertainty_pct, expected_u)
    assert (t.expected_hours, t.measured_hours, t.estimated_hours) == (50, 47, 3)
    # The park's QA/QC also counts what no enterprise owns (an unknown meter).
    assert report.qaqc.quarantined_by_reason == {"invalid": 2, "unknown_meter": 1}
    # A-E's gap (RPT-A) and B-W's glitch (RPT-B).
    assert report.qaqc.events_by_kind == {"glitch": 1, "long_gap": 1}
    assert report.qaqc.conflicts == 1


def test_production_is_priced_hourly_with_no_co2e(db: Connection) -> None:
    rows = db.execute(
        text(
            "SELECT count(*), sum(consumption), sum(co2e_kg), min(scope), max(scope) "
            "FROM hourly_emissions WHERE meter_id = 'A-P'"
        )
    ).one()
    assert tuple(rows) == (10, 25.0, 0.0, 0, 0)
    kinds = db.execute(
        text("SELECT scope, co2e_kg, consumption FROM enterprise_hourly WHERE kind = 'production'")
    ).all()
    assert len(kinds) == 10 and all(r.scope == 0 and r.co2e_kg == 0 for r in kinds)


def test_report_totals_equal_the_hourly_totals(db: Connection) -> None:
    report = build.inventory(db, "RPT", 2025, now=NOW)
    hourly = db.execute(
        text(
            "SELECT h.enterprise_id, sum(h.co2e_kg) FROM hourly_emissions h "
            "JOIN meters m ON m.id = h.meter_id WHERE m.parent_id IS NULL "
            "GROUP BY ROLLUP (h.enterprise_id)"
        )
    ).all()
    sums: dict[str | None, float] = dict(hourly)
    assert close(report.totals.co2e_kg, sums[None])
    for section in report.enterprises:
        assert close(section.totals.co2e_kg, sums[section.id])
    rollup = db.execute(text("SELECT sum(co2e_kg) FROM site_hourly WHERE site_id = 'RPT'"))
    assert close(report.totals.co2e_kg, rollup.scalar_one())


def test_xlsx_opened_back_cell_by_cell(db: Connection) -> None:
    report = build.inventory(db, "RPT", 2025, enterprise="RPT-A", now=NOW)
    wb = load_workbook(io.BytesIO(inventory_xlsx(report)))
    assert tuple(wb.sheetnames) == SHEETS
    general = {row[0]: row[1] for row in wb["1 General"].iter_rows(min_row=2, values_only=True)}
    assert general["Site"] == "RPT" and general["Enterprise"] == "RPT-A"
    assert general["Period start"] == "2024-12-31T17:00:00+00:00"
    assert general["Total CO2e (kg)"] == 700.0
    assert general["Scope 1 CO2e (kg)"] == 200.0 and general["Scope 2 CO2e (kg)"] == 500.0
    assert close(general["Energy (TOE)"], 0.2423)
    assert general["Completeness"] == 0.85
    activity = list(wb["2 Activity data"].iter_rows(values_only=True))
    assert activity[0] == (
        "Enterprise", "Scope", "Source", "Factor", "Unit", "Consumption", "TOE",
    )  # fmt: skip
    assert activity[1][:6] == ("RPT-A", 1, "diesel", "DSL", "L", 100.0)
    assert close(activity[1][6], 0.088)
    assert activity[2][:6] == ("RPT-A", 2, "electricity", "GRID", "kWh", 1000.0)
    assert [r[0] for r in activity[3:]] == ["TOTAL", "TOTAL"]
    emissions = list(wb["3 Emissions"].iter_rows(min_row=2, values_only=True))
    assert emissions[0] == ("RPT-A", 1, "diesel", "DSL", 200.0, 0.2, 0.0)
    assert emissions[1] == ("RPT-A", 2, "electricity", "GRID", 500.0, 0.5, 0.0)
    factors = list(wb["4 Emission factors"].iter_rows(min_row=2, values_only=True))
    assert factors == [
        ("DSL", "L", "2025-03-01T00:00:00+00:00", None, 2.0, 3.0, "dsl"),
        ("GRID", "kWh", "2025-03-01T00:00:00+00:00", None, 0.5, 5.0,
         "grid 2025-03-01T07:00:00+07:00"),
    ]  # fmt: skip
    completeness = list(wb["6 Completeness"].iter_rows(min_row=2, values_only=True))
    assert ("RPT-A", "A-E", "electricity", 10, 7, 3, 0, 0.7) in completeness
    assert completeness[-1] == ("TOTAL", None, None, 20, 17, 3, 0, 0.85)
    uncertainty = list(wb["7 Uncertainty"].iter_rows(min_row=2, values_only=True))
    assert uncertainty[1][:5] == ("RPT-A", 2, "electricity", "GRID", 500.0)
    assert close(uncertainty[1][7], math.sqrt(26))
    assert close(uncertainty[-1][7], report.totals.uncertainty_pct or 0)
    qa = list(wb["8 QA-QC"].iter_rows(min_row=2, values_only=True))
    assert ("RPT-A", "quarantine", "invalid", 2) in qa
    assert list(wb["9 Production"].iter_rows(min_row=2, values_only=True)) == [
        ("RPT-A", "production", "t", 25.0)
    ]


def test_html_is_printable_and_escaped(db: Connection) -> None:
    page = inventory_html(build.inventory(db, "RPT", 2025, now=NOW))
    assert page.startswith("<!doctype html>") and "@media print" in page
    assert "1,000.954" in page  # total tCO2e
    assert "<script" not in page
    for section in ("1. Summary", "2. Activity data", "3. Emission factors", "5. QA/QC log"):
        assert section in page


def test_obligation_position_and_alert(small: Engine, db: Connection) -> None:
    positions = {p.enterprise_id: p for p in build.obligation(db, "RPT", now=NOW)}
    a, c = positions["RPT-A"], positions["RPT-C"]
    assert close(a.elapsed_share, SHARE)
    assert close(a.ytd_tco2e, 0.7) and close(a.projected_tco2e, 0.7 / SHARE)
    assert close(a.ytd_toe, 0.2423) and not a.projected_over_toe
    assert close(c.projected_tco2e, 1000.0 / SHARE) and c.projected_over_tco2e
    assert close(c.projected_toe, 308.6 / SHARE) and c.projected_over_toe
    assert close(positions["RPT-B"].ytd_tco2e, 0.25)  # scope 3 water left out
    evaluate(small, NOW)
    firing = db.execute(
        text("SELECT subject, value FROM alerts WHERE rule = 'obligation_threshold' ORDER BY 1")
    ).all()
    assert [s for s, _ in firing] == ["RPT/RPT-C/tco2e", "RPT/RPT-C/toe"]
    assert close(firing[0][1], 1000.0 / SHARE)


def test_intensity_and_allowances(db: Connection) -> None:
    items = {i.enterprise_id: i for i in build.intensities(db, "RPT", 2025, now=NOW)}
    a = items["RPT-A"]
    assert (a.product_kind, a.unit) == ("production", "t")
    assert [(m.month, m.production) for m in a.months] == [("2025-03", 25.0)]
    assert close(a.months[0].tco2e, 0.7) and close(a.intensity, 0.7 / 25)
    assert a.allocated_tco2e_per_unit == 0.02
    assert close(a.projected_allowances_tco2e or 0, 0.02 * 25 / SHARE)
    assert close(a.projected_surplus_tco2e or 0, (0.5 - 0.7) / SHARE)  # a deficit
    b = items["RPT-B"]
    assert b.product_kind is None and b.intensity is None and b.projected_surplus_tco2e is None


def test_restatement_after_submission_and_the_chain(
    database_factory: Callable[[], Settings],
) -> None:
    engine, _ = _engine(database_factory)
    try:
        with engine.begin() as conn:
            first = build.submit(conn, "RPT", 2025, years=1, enterprise="RPT-A", by="t", now=NOW)
        # A revised grid factor from 12:00 +07 (05:00 UTC): hours 05-09 at 0.6.
        revised = park_dict(
            [("2025-03-01T07:00:00+07:00", 0.5), ("2025-03-01T12:00:00+07:00", 0.6)]
        )
        with engine.begin() as conn:
            apply_park(conn, Park.model_validate(revised))
        refresh_until_clean(engine)
        with engine.connect() as conn:
            row = report_repo.submission(conn, first["id"])
            assert row is not None
            changes = {c.line: c for c in build.restatement(conn, row, now=NOW)}
        grid = "enterprises[RPT-A].sources[RPT-A/scope2/electricity/GRID].co2e_kg"
        assert changes[grid].submitted == 500.0 and close(changes[grid].current, 550.0)
        assert close(changes[grid].delta or 0, 50.0)
        assert close(changes["totals.co2e_kg"].current, 750.0)
        assert "factors[GRID@2025-03-01T05:00:00+00:00].kgco2e_per_unit" in changes
        with engine.begin() as conn:
            second = build.submit(conn, "RPT", 2025, years=1, enterprise="RPT-A", by="t", now=NOW)
            build.submit(conn, "RPT", 2025, years=1, enterprise=None, by="t", now=NOW)
        assert second["previous_hash"] == first["content_hash"]
        with engine.connect() as conn:
            chains = build.verify(conn, "RPT", None)
            assert chains["RPT-A"].valid and chains["RPT-A"].length == 2
            assert chains["site:RPT"].valid and chains["site:RPT"].length == 1
            stored_row = report_repo.submission(conn, second["id"])
            assert stored_row is not None
            stored = json.loads(stored_row["document"])
            assert Inventory.model_validate(stored).totals.co2e_kg == 750.0
        with engine.begin() as conn:  # an edit behind the service's back
            conn.execute(
                text(
                    "UPDATE report_submissions SET document = replace(document, :a, :b) "
                    "WHERE id = :i"
                ),
                {"a": '"co2e_kg":700.0', "b": '"co2e_kg":600.0', "i": first["id"]},
            )
        with engine.connect() as conn:
            broken = build.verify(conn, "RPT", "RPT-A")["RPT-A"]
        assert not broken.valid and broken.broken_at == first["id"]
        assert broken.reason == "document altered"
    finally:
        engine.dispose()


def test_unknown_site_or_enterprise(db: Connection) -> None:
    with pytest.raises(build.ReportError):
        build.inventory(db, "NOPE", 2025)
    with pytest.raises(build.ReportError):
        build.inventory(db, "RPT", 2025, enterprise="NOPE")


def test_xlsx_text_never_becomes_a_formula(db: Connection) -> None:
    report = build.inventory(db, "RPT", 2025, enterprise="RPT-A", now=NOW)
    hostile = report.model_copy(update={"notes": ['=HYPERLINK("http://x")']})
    ws = load_workbook(io.BytesIO(inventory_xlsx(hostile)))["1 General"]
    note = next(row for row in ws.iter_rows(min_row=2) if row[0].value == "Note")[1]
    assert note.data_type == "s" and note.value == '=HYPERLINK("http://x")'


def test_monthly_inventory_lists_production_in_no_scope(db: Connection) -> None:
    """The older /v1/inventory reads the same totals: production is a line of
    scope 0 that adds to no scope and to no total."""
    scope = Scope("RPT", "Asia/Ho_Chi_Minh", "RPT-A")
    monthly = build_monthly_inventory(db, scope, 2025, NOW)
    production = [line for line in monthly.lines if line.kind == "production"]
    assert [(p.scope, p.consumption, p.co2e_kg) for p in production] == [(0, 25.0, 0.0)]
    assert monthly.total_co2e_kg == 700.0 and sum(monthly.by_scope.values()) == 700.0
