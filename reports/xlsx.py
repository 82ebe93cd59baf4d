"""The inventory as an Excel workbook, one sheet per section of the facility
inventory form (Circular 38/2023/TT-BCT): general information, activity data,
emissions, factors, TOE factors, completeness, uncertainty, QA/QC, production.

Numbers are written as numbers at full precision (formatting only changes how
they show), timestamps as ISO 8601 text with their offset: Excel has no time zone.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from reports.model import EnterpriseSection, Inventory, SourceLine

Cell = str | int | float | None
TOTAL = "TOTAL"

SHEETS = (
    "1 General",
    "2 Activity data",
    "3 Emissions",
    "4 Emission factors",
    "5 TOE factors",
    "6 Completeness",
    "7 Uncertainty",
    "8 QA-QC",
    "9 Production",
)
HEADERS: dict[str, tuple[str, ...]] = {
    "2 Activity data": ("Enterprise", "Scope", "Source", "Factor", "Unit", "Consumption", "TOE"),
    "3 Emissions": (
        "Enterprise", "Scope", "Source", "Factor", "CO2e (kg)", "CO2e (t)", "Avoided CO2e (kg)",
    ),
    "4 Emission factors": (
        "Factor", "Unit", "Valid from", "Published at", "kgCO2e per unit", "Uncertainty (%)",
        "Source",
    ),
    "5 TOE factors": ("Kind", "Unit", "TOE per unit", "Source"),
    "6 Completeness": (
        "Enterprise", "Meter", "Kind", "Expected h", "Measured h", "Estimated h", "Missing h",
        "Completeness",
    ),
    "7 Uncertainty": (
        "Enterprise", "Scope", "Source", "Factor", "CO2e (kg)", "Activity U (%)",
        "Factor U (%)", "Combined U (%)",
    ),
    "8 QA-QC": ("Enterprise", "Check", "Item", "Count or value"),
    "9 Production": ("Enterprise", "Product", "Unit", "Quantity"),
}  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rows(ws: Worksheet, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(list(row))
        for cell in ws[ws.max_row]:
            # Text is text: a source or note starting with "=" must not become a formula.
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"


def _sections(report: Inventory) -> list[tuple[str, list[SourceLine]]]:
    """Each enterprise's sources, then the report's own (the park's, or the one
    enterprise's again) as TOTAL."""
    return [(e.id, e.sources) for e in report.enterprises] + [(TOTAL, report.sources)]


def _general(report: Inventory) -> list[tuple[str, Cell]]:
    t = report.totals
    return [
        ("Site", report.site),
        ("Site name", report.site_name),
        ("Enterprise", report.enterprise or "(whole park)"),
        ("Period start", _iso(report.period.start)),
        ("Period end", _iso(report.period.end)),
        ("Years", report.period.years),
        ("Time zone", report.period.timezone),
        ("Generated at", _iso(report.generated_at)),
        ("Total CO2e (kg)", t.co2e_kg),
        ("Scope 1 CO2e (kg)", t.by_scope_co2e_kg["1"]),
        ("Scope 2 CO2e (kg)", t.by_scope_co2e_kg["2"]),
        ("Scope 3 CO2e (kg)", t.by_scope_co2e_kg["3"]),
        ("Avoided CO2e (kg)", t.avoided_co2e_kg),
        ("Energy (TOE)", t.toe),
        ("Uncertainty (%)", t.uncertainty_pct),
        ("Completeness", t.completeness),
        ("Method", report.method),
        *(("Note", note) for note in report.notes),
    ]


def _qaqc(sections: list[EnterpriseSection], report: Inventory) -> list[tuple[Cell, ...]]:
    rows: list[tuple[Cell, ...]] = []
    for name, qa in [(e.id, e.qaqc) for e in sections] + [(TOTAL, report.qaqc)]:
        rows += [(name, "quarantine", r, n) for r, n in sorted(qa.quarantined_by_reason.items())]
        rows.append((name, "conflicts", "", qa.conflicts))
        rows += [(name, "event", k, n) for k, n in sorted(qa.events_by_kind.items())]
        rows += [
            (name, "replacement", r.line, f"{r.old_final_value!r} -> {r.new_start_value!r}")
            for r in qa.replacements
        ]
        rows += [(name, "restated factor", v, "") for v in qa.restated_factor_values]
        rows.append((name, "restated meter-hours", "", qa.restated_meter_hours))
    return rows


def inventory_xlsx(report: Inventory) -> bytes:
    wb = Workbook()
    general = wb.active
    assert general is not None
    general.title = SHEETS[0]
    _rows(general, ("Item", "Value"), _general(report))
    sheets = {name: wb.create_sheet(name) for name in SHEETS[1:]}
    sections = _sections(report)
    _rows(
        sheets["2 Activity data"],
        HEADERS["2 Activity data"],
        [
            (who, s.scope, s.kind, s.factor_key, s.unit, s.consumption, s.toe)
            for who, sources in sections
            for s in sources
        ],
    )
    _rows(
        sheets["3 Emissions"],
        HEADERS["3 Emissions"],
        [
            (who, s.scope, s.kind, s.factor_key, s.co2e_kg, s.co2e_kg / 1000, s.avoided_co2e_kg)
            for who, sources in sections
            for s in sources
        ],
    )
    _rows(
        sheets["4 Emission factors"],
        HEADERS["4 Emission factors"],
        [
            (f.key, f.unit, _iso(f.valid_from), _iso(f.published_at), f.kgco2e_per_unit,
             f.uncertainty_pct, f.source)
            for f in report.factors
        ],
    )  # fmt: skip
    _rows(
        sheets["5 TOE factors"],
        HEADERS["5 TOE factors"],
        [(t.kind, t.unit, t.toe_per_unit, t.source) for t in report.toe_factors],
    )
    _rows(
        sheets["6 Completeness"],
        HEADERS["6 Completeness"],
        [
            (m.enterprise_id, m.meter_id, m.kind, m.expected_hours, m.measured_hours,
             m.estimated_hours, m.missing_hours, m.completeness)
            for e in report.enterprises
            for m in e.meters
        ]
        + [
            (TOTAL, "", "", report.totals.expected_hours, report.totals.measured_hours,
             report.totals.estimated_hours, report.totals.missing_hours,
             report.totals.completeness)
        ],
    )  # fmt: skip
    _rows(
        sheets["7 Uncertainty"],
        HEADERS["7 Uncertainty"],
        [
            (who, s.scope, s.kind, s.factor_key, s.co2e_kg, s.activity_uncertainty_pct,
             s.factor_uncertainty_pct, s.uncertainty_pct)
            for who, sources in sections
            for s in sources
        ]
        + [(TOTAL, "", "", "", report.totals.co2e_kg, None, None, report.totals.uncertainty_pct)],
    )  # fmt: skip
    _rows(sheets["8 QA-QC"], HEADERS["8 QA-QC"], _qaqc(report.enterprises, report))
    _rows(
        sheets["9 Production"],
        HEADERS["9 Production"],
        [(e.id, p.kind, p.unit, p.quantity) for e in report.enterprises for p in e.production],
    )
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
