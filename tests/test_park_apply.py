"""Applying the park file to the real database: idempotent, deactivates, keeps readings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import Connection, text

from core.park.loader import parse_park
from core.park.models import Park
from core.park.repository import apply_park, read_park

CONFIG_TABLES = (
    "sites",
    "enterprises",
    "meters",
    "emission_factors",
    "emission_factor_values",
    "roadmaps",
    "roadmap_milestones",
)


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every configuration table, physical row version included."""
    return {
        t: [tuple(r) for r in conn.execute(text(f"SELECT xmin::text, * FROM {t} ORDER BY 2, 3"))]
        for t in CONFIG_TABLES
    }


def without_meter(park: Park, meter_id: str) -> Park:
    data = park.model_dump(mode="json")
    for site in data["sites"]:
        for ent in site["enterprises"]:
            ent["meters"] = [m for m in ent["meters"] if m["id"] != meter_id]
    return parse_park(data)


def test_apply_twice_gives_identical_rows(conn: Connection, sample_park: Park) -> None:
    first = apply_park(conn, sample_park)
    assert first.inserted["meters"] == len(sample_park.meters())
    before = snapshot(conn)
    second = apply_park(conn, sample_park)
    assert not second.changed
    assert snapshot(conn) == before


def test_removed_meter_is_deactivated_and_keeps_its_readings(
    conn: Connection, sample_park: Park
) -> None:
    apply_park(conn, sample_park)
    parents = {m.parent for _, _, m in sample_park.meters()}
    gone = next(m for _, _, m in sample_park.meters() if m.id not in parents)
    conn.execute(
        text("INSERT INTO readings (meter_id, ts, value) VALUES (:m, :ts, 42)"),
        {"m": gone.id, "ts": datetime(2026, 1, 1, tzinfo=UTC)},
    )
    summary = apply_park(conn, without_meter(sample_park, gone.id))
    assert summary.deactivated["meters"] == 1
    active = conn.execute(text("SELECT active FROM meters WHERE id = :m"), {"m": gone.id})
    assert active.scalar_one() is False
    kept = conn.execute(text("SELECT count(*) FROM readings WHERE meter_id = :m"), {"m": gone.id})
    assert kept.scalar_one() == 1
    # Putting it back re-activates the same row.
    assert apply_park(conn, sample_park).updated["meters"] == 1


def test_changed_factor_value_updates_only_that_row(conn: Connection, sample_park: Park) -> None:
    apply_park(conn, sample_park)
    data = sample_park.model_dump(mode="json")
    data["factors"][0]["values"][0]["kgco2e_per_unit"] += 0.001
    summary = apply_park(conn, parse_park(data))
    assert dict(summary.updated) == {"emission_factor_values": 1}
    assert not summary.inserted


def test_show_reads_back_what_was_applied(conn: Connection, sample_park: Park) -> None:
    apply_park(conn, sample_park)
    shown = yaml.safe_load(yaml.safe_dump(read_park(conn), default_flow_style=False))
    for factor in shown["factors"]:
        for value in factor["values"]:
            value["valid_from"] = value["valid_from"].isoformat()
            if value["published_at"] is None:
                del value["published_at"]
            else:
                value["published_at"] = value["published_at"].isoformat()
    for site in shown["sites"]:
        for ent in site["enterprises"]:
            for meter in ent["meters"]:
                meter["commissioned_at"] = meter["commissioned_at"].isoformat()
                for optional in ("rollover", "interval_s", "parent"):
                    if meter[optional] is None:
                        del meter[optional]
    reparsed = parse_park(shown)
    assert {m.id: m.commissioned_at for _, _, m in reparsed.meters()} == {
        m.id: m.commissioned_at for _, _, m in sample_park.meters()
    }
    assert {m.id: m.parent for _, _, m in reparsed.meters()} == {
        m.id: m.parent for _, _, m in sample_park.meters()
    }
    assert {m.id: sample_park.factor_key_for(m) for _, _, m in sample_park.meters()} == {
        m.id: m.factor for _, _, m in reparsed.meters()
    }
