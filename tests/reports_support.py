"""A small park whose inventory is computed by hand (tests/test_reports.py).

Site RPT (+07:00), 1 March 2025 00:00-10:00 UTC, counters read on the hour:
- RPT-A: grid meter A-E 1,000 kWh with readings at 05:00 and 06:00 missing (04:00-07:00
  is a 3 h interval > max gap: 3 estimated hours), accuracy 1 %; diesel delta meter
  A-D 10 L per hour (accuracy by default 1 %); production A-P 25 t.
- RPT-B: grid meter B-E 500 kWh, accuracy 2 %; water B-W 20 m3 read every 30 min
  with one glitch reading of 0 (accuracy by default 2 %).
- RPT-C: grid meter C-E 2,000,000 kWh: big enough to cross both thresholds.
Factors: GRID 0.5 kg/kWh (U 5 %), DSL 2.0 kg/L (U 3 %), WTR 0.2 kg/m3 (U unknown).
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from core.park.models import Park
from core.park.repository import apply_park
from engine.service import refresh_until_clean
from ingest.parse import Parsed, Reading
from ingest.writer import BatchWriter, Message

T0 = datetime(2025, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
START = "2025-03-01T07:00:00+07:00"  # = T0


def _meter(mid: str, kind: str, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": mid,
        "kind": kind,
        "unit": unit,
        "reading": "counter",
        "commissioned_at": START,
        **extra,
    }


def park_dict(grid_values: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    grid = grid_values or [(START, 0.5)]
    return {
        "default_factors": {
            "electricity": "GRID",
            "diesel": "DSL",
            "water": "WTR",
            "production": "OUT-T",
        },
        "factors": [
            {
                "key": "GRID",
                "unit": "kWh",
                "uncertainty_pct": 5,
                "values": [
                    {"valid_from": v, "kgco2e_per_unit": kg, "source": f"grid {v}"}
                    for v, kg in grid
                ],
            },
            {
                "key": "DSL",
                "unit": "L",
                "uncertainty_pct": 3,
                "values": [{"valid_from": START, "kgco2e_per_unit": 2.0, "source": "dsl"}],
            },
            {
                "key": "WTR",
                "unit": "m3",
                "values": [{"valid_from": START, "kgco2e_per_unit": 0.2, "source": "wtr"}],
            },
            {
                "key": "OUT-T",
                "unit": "t",
                "values": [{"valid_from": START, "kgco2e_per_unit": 0, "source": "none"}],
            },
        ],
        "toe_factors": [
            {"kind": "electricity", "unit": "kWh", "toe_per_unit": 0.0001543, "source": "moit e"},
            {"kind": "diesel", "unit": "L", "toe_per_unit": 0.00088, "source": "moit d"},
        ],
        "sites": [
            {
                "id": "RPT",
                "name": "Report park",
                "timezone": "Asia/Ho_Chi_Minh",
                "alerts": {"obligation": {"for_s": 0}},
                "enterprises": [
                    {
                        "id": "RPT-A",
                        "name": "A Steel",
                        "industry": "steel_structures",
                        "allocations": [{"year": 2025, "tco2e_per_unit": 0.02, "unit": "t"}],
                        "meters": [
                            _meter("A-E", "electricity", "kWh", accuracy_pct=1.0),
                            _meter("A-D", "diesel", "L", reading="delta", interval_s=3600),
                            _meter("A-P", "production", "t", max_gap_s=36000),
                        ],
                    },
                    {
                        "id": "RPT-B",
                        "name": "B Garments",
                        "industry": "garments",
                        "meters": [
                            _meter("B-E", "electricity", "kWh", accuracy_pct=2.0),
                            _meter("B-W", "water", "m3"),
                        ],
                    },
                    {
                        "id": "RPT-C",
                        "name": "C Smelter",
                        "industry": "other",
                        "meters": [_meter("C-E", "electricity", "kWh", max_gap_s=36000)],
                    },
                ],
            }
        ],
    }


def readings() -> dict[str, list[Reading]]:
    hours = range(11)
    return {
        "A-E": [Reading("A-E", T0 + i * H, 100.0 * i) for i in hours if i not in (5, 6)],
        "A-D": [Reading("A-D", T0 + i * H, 10.0) for i in range(1, 11)],
        "A-P": [Reading("A-P", T0, 0.0), Reading("A-P", T0 + 10 * H, 25.0)],
        "B-E": [Reading("B-E", T0 + i * H, 50.0 * i) for i in hours],
        "B-W": [Reading("B-W", T0 + i * H / 2, 1.0 * i) for i in range(21)]
        + [Reading("B-W", T0 + 2 * H + H / 4, 0.0)],  # a glitch between 4.0 and 5.0
        "C-E": [Reading("C-E", T0, 0.0), Reading("C-E", T0 + 10 * H, 2_000_000.0)],
    }


def load(engine: Engine, libpq_url: str) -> None:
    with engine.begin() as conn:
        apply_park(conn, Park.model_validate(park_dict()))
    with closing(BatchWriter(libpq_url)) as writer:
        for meter, rows in readings().items():
            writer.write([Message(f"parks/RPT/meters/{meter}", b"", Parsed("RPT", rows))])
    refresh_until_clean(engine)
    with engine.begin() as conn:
        cases: list[tuple[str, str | None]] = [
            ("invalid", "A-E"),
            ("invalid", "A-E"),
            ("unknown_meter", None),
        ]
        for n, (reason, meter_id) in enumerate(cases):
            conn.execute(
                text(
                    "INSERT INTO quarantine (topic, site_id, meter_id, reason, detail, payload, "
                    "payload_sha256, received_at) VALUES ('parks/RPT/x', 'RPT', :m, :r, :d, "
                    "'\\x00', sha256('\\x00'), :t)"
                ),
                {"m": meter_id, "r": reason, "d": f"case {n}", "t": T0 + 2 * H},
            )
        conn.execute(
            text(
                "INSERT INTO reading_conflicts (meter_id, ts, stored_value, rejected_value, "
                "topic) VALUES ('B-E', :t, 50, 51, 'parks/RPT/meters/B-E')"
            ),
            {"t": T0 + H},
        )
