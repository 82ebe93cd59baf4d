"""The plausibility guard in the engine, on the real store: a meter with a declared
max_rate_per_h whose register restarts adds no tonnes; the implausible event is
stored; after `emissions engine accept-interval` the interval counts."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from core.dirty_marks import mark_instant
from core.settings import Settings
from engine.service import refresh_until_clean
from tests.kit.paths import ROOT

METER = "DVU-E1-M1"
T0 = datetime(2025, 6, 1, 8, tzinfo=UTC)
# ~600 kWh/h, then at 08:30 the register restarts from 480,000 (below 520,000: a reset).
VALUES = [520_000.0 + 10 * i for i in range(30)] + [480_000.0 + 10 * i for i in range(30)]


def totals(engine: Engine) -> tuple[float, bool]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT sum(consumption), bool_or(estimated) FROM hourly_emissions "
                "WHERE meter_id = :m"
            ),
            {"m": METER},
        ).one()
    return float(row[0]), bool(row[1])


def accept(settings: Settings, at: datetime) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "engine",
            "accept-interval",
            METER,
            "--at",
            at.isoformat(),
            "--by",
            "ops",
            "--note",
            "genuine",
        ],
        cwd=ROOT,
        env={**os.environ, "EMISSIONS_DB_NAME": settings.db_name},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_register_restart_adds_no_tonnes_until_accepted(
    park_db: tuple[Settings, Engine],
) -> None:
    settings, engine = park_db
    with engine.begin() as conn:
        conn.execute(text("UPDATE meters SET max_rate_per_h = 5000 WHERE id = :m"), {"m": METER})
        for i, value in enumerate(VALUES):
            conn.execute(
                text("INSERT INTO readings (meter_id, ts, value) VALUES (:m, :ts, :v)"),
                {"m": METER, "ts": T0 + timedelta(minutes=i), "v": value},
            )
        mark_instant(conn, METER, T0)
    refresh_until_clean(engine)
    consumed, estimated = totals(engine)
    assert consumed == 58 * 10.0  # the 480,000 kWh "reset" is not priced
    assert estimated  # its hour reads as estimated until someone decides
    restart = T0 + timedelta(minutes=30)
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT ts, kind FROM data_quality_events WHERE meter_id = :m ORDER BY kind"),
            {"m": METER},
        ).all()
    assert [tuple(e) for e in events] == [(restart, "implausible"), (restart, "reset")]

    wrong = accept(settings, restart + timedelta(minutes=1))
    assert wrong.returncode == 1 and "no implausible interval" in wrong.stderr
    done = accept(settings, restart)
    assert done.returncode == 0, done.stderr
    refresh_until_clean(engine)
    consumed, estimated = totals(engine)
    assert consumed == 58 * 10.0 + 480_000.0
    assert not estimated
