"""The simulator against the real broker, the real `emissions ingest` and the real engine.

One simulated day of the two-site test park, with a seed and every fault kind. The
ledger says what the ingestor must have done with each reading; the store must agree
exactly: stored readings, quarantine rows and reasons, conflicts, and (after an
engine rebuild) the data-quality events SPEC section 5 calls for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import Engine, text

from core.park.models import Park
from core.settings import Settings
from simulator.ledger import read
from tests.ingest_harness import count, settle, wait_for_count
from tests.kit.broker import Broker
from tests.kit.ingest import running_ingest
from tests.kit.paths import ROOT

START = datetime(2026, 1, 5, tzinfo=UTC) - timedelta(hours=7)  # Monday 00:00 +07:00
END = START + timedelta(days=1)
FAULTS = [
    "glitch:rate=0.0003",
    "nan:rate=0.0002",
    "duplicate:rate=0.01",
    "glitch:at=2026-01-05T09:00+07:00,meter=NCK-STL1-E-01",
    "reset:at=2026-01-05T10:00+07:00,meter=NCK-GAR1-E-02",
    "reset:at=2026-01-05T10:00+07:00,meter=NCK-PLA1-E-02",  # rollover 100000: may read as a wrap
    "rollover:at=2026-01-05T13:00+07:00,meter=NCK-ELE1-E-01",
    "silent:at=2026-01-05T06:00+07:00,meter=NCK-FOOD1-E-01,for=2h",
    "silent:at=2026-01-05T06:00+07:00,meter=NCK-ELE1-E-04,for=1h",
    "clock_skew:at=2026-01-05T11:00+07:00,meter=NCK-LOG1-E-01,skew=5y",
    "clock_skew:at=2026-01-05T11:00+07:00,meter=NCK-LOG2-E-01,skew=-30y",
    "nan:at=2026-01-05T12:00+07:00,meter=NCK-STL2-E-01",
    "duplicate:at=2026-01-05T12:00+07:00,meter=NCK-GAR2-E-01",
    "out_of_order:at=2026-01-05T14:00+07:00,meter=NCK-ELE2-E-01",
    "late:at=2026-01-05T08:00+07:00,meter=NCK-WWTP-E-01,for=5h",
    "malformed:rate=0.01",
    "unknown_meter:at=2026-01-05T15:00+07:00,meter=NCK-GAR1-E-03",  # a canonical gateway
    "wrong_site:at=2026-01-05T15:00+07:00,meter=NCK-LOG1-E-01",
    "oversized:at=2026-01-05T16:00+07:00,meter=NCK-FOOD1-E-01",
    "conflict:at=2026-01-05T17:00+07:00,meter=NCK-STL2-E-01",
]


def _simulate(broker: Broker, park_file: Path, ledger: Path) -> None:
    args = [
        sys.executable, "-m", "cli", "simulate", "--mode", "accelerated",
        "--park", str(park_file), "--seed", "11", "--interval-s", "120",
        "--start", START.isoformat(), "--end", END.isoformat(), "--ledger", str(ledger),
        "--buffer", str(ledger.with_suffix(".sqlite")),
    ]  # fmt: skip
    for spec in FAULTS:
        args += ["--fault", spec]
    env = {
        **os.environ,
        "EMISSIONS_STATE_DIR": str(broker.state_dir),
        "EMISSIONS_MQTT_PORT": str(broker.port),
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }
    subprocess.run(args, cwd=ROOT, env=env, check=True, timeout=120)


def _rebuild(settings: Settings, site: str) -> None:
    password = settings.db_password.get_secret_value() if settings.db_password else ""
    env = {
        **os.environ,
        "EMISSIONS_DB_NAME": settings.db_name,
        "EMISSIONS_DB_PASSWORD": password,
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-m", "cli", "engine", "rebuild", "--site", site]
    args += ["--from", START.isoformat(), "--to", (END + timedelta(days=1)).isoformat()]
    subprocess.run(args, cwd=ROOT, env=env, check=True, timeout=120, capture_output=True)


def _files(tmp_path: Path, park: Park) -> tuple[Path, Path]:
    """The park file the simulator reads (the one the store holds) and its ledger."""
    park_file = tmp_path / "park.yaml"
    park_file.write_text(yaml.safe_dump(park.model_dump(mode="json", exclude_none=True)))
    return park_file, tmp_path / "ledger.jsonl"


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def test_a_simulated_day_is_stored_exactly_as_the_ledger_says(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park, tmp_path: Path
) -> None:
    settings, engine = park_db
    park_file, ledger_file = _files(tmp_path, test_park)
    with running_ingest(settings, broker, "svc-ingest-3"):
        _simulate(broker, park_file, ledger_file)
        records = read(ledger_file)
        published = [r for r in records if r["event"] == "publish"]
        items = [i for r in published for i in r["readings"]]
        stored = {
            (i["meter"], _epoch(i["ts"]), i["value"]) for i in items if i["expect"] == "stored"
        }
        conflicts = {(i["meter"], _epoch(i["ts"])) for i in items if i["expect"] == "conflict"}
        reasons: Counter[str] = Counter()
        for r in published:
            if r["repeats"] is not None:
                continue  # a repeated message is deduplicated, not quarantined twice
            if r["reason"]:
                reasons[r["reason"]] += 1
            else:
                reasons.update(i["reason"] for i in r["readings"] if i["expect"] == "quarantined")

        assert wait_for_count(engine, len(stored), timeout=60) == len(stored)
        assert settle(engine) == len(stored)
        assert wait_for_count(engine, reasons.total(), "quarantine") == reasons.total()
        assert settle(engine, "quarantine", quiet_s=1.0) == reasons.total()

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT meter_id, ts, value FROM readings")).all()
        in_store = {(m, int(ts.timestamp()), v) for m, ts, v in rows}
        quarantined = Counter(
            r for (r,) in conn.execute(text("SELECT reason FROM quarantine")).all()
        )
        conflict_rows = {
            (m, int(ts.timestamp()))
            for m, ts in conn.execute(text("SELECT meter_id, ts FROM reading_conflicts")).all()
        }
    assert in_store == stored
    assert quarantined == reasons
    assert conflict_rows == conflicts
    # every fault kind happened and was recorded
    faults = {r["fault"] for r in records if r["event"] == "fault"}
    faults |= {r["fault"] for r in published if r["fault"]}
    faults |= {i.get("fault") for i in items} - {None}
    assert faults >= {spec.split(":")[0] for spec in FAULTS}
    assert set(quarantined) >= {
        "non_finite_value", "future_timestamp", "before_commissioning", "unknown_meter",
        "wrong_site", "oversized", "not_json", "invalid_payload", "invalid_timestamp",
    }  # fmt: skip
    assert Counter(i["expect"] for i in items)["duplicate"] > 0
    # the demo park is mixed: every device protocol published on its native topics
    native = {
        "chirpstack_v4": "application/", "shelly_gen2": "/events/rpc",
        "tasmota": "tele/", "neuron": "/neuron/", "canonical": "parks/",
    }  # fmt: skip
    seen = {p for p, mark in native.items() for r in published if mark in r["topic"]}
    assert seen == set(native)

    # the engine finds exactly the data-quality events the injected faults call for
    for site in ("NCK", "DVU"):
        _rebuild(settings, site)
    cutoff = int((END - timedelta(minutes=30)).timestamp())  # a trailing dip is a reset until
    expected_dq = {
        (r["meter"], _epoch(r["ts"]), r["dq"])
        for r in records
        if r["event"] == "fault" and r["dq"] and _epoch(r["ts"]) < cutoff
    }
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT meter_id, ts, kind FROM data_quality_events WHERE ts < :cut"),
            {"cut": datetime.fromtimestamp(cutoff, UTC)},
        ).all()
    found = {(m, int(ts.timestamp()), kind) for m, ts, kind in events}
    assert found == expected_dq
    assert {kind for *_, kind in expected_dq} >= {"glitch", "reset", "wrap", "long_gap"}
    assert count(engine) == len(stored)


def _latest(engine: Engine) -> float:
    with engine.connect() as conn:
        latest = conn.execute(text("SELECT max(ts) FROM readings")).scalar_one()
    return latest.timestamp() if latest is not None else 0.0


@contextmanager
def _killed_at_exit(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The simulator's own stop is what the test checks: killed only if it never came."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def test_real_time_after_a_backfill_reaches_the_store_and_stops_cleanly(
    park_db: tuple[Settings, Engine], broker: Broker, test_park: Park, tmp_path: Path
) -> None:
    settings, engine = park_db
    park_file, ledger_file = _files(tmp_path, test_park)
    args = [
        sys.executable, "-m", "cli", "simulate", "--mode", "realtime", "--backfill", "2m",
        "--park", str(park_file), "--interval-s", "5", "--jitter-s", "1", "--batch-s", "1",
        "--ledger", str(ledger_file), "--buffer", str(tmp_path / "buffer.sqlite"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "EMISSIONS_STATE_DIR": str(broker.state_dir),
        "EMISSIONS_MQTT_PORT": str(broker.port),
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }
    with running_ingest(settings, broker, "svc-ingest-4"):
        began = time.time()
        with _killed_at_exit(args, env) as proc:
            # Stop once real time reached the store: a reading taken after the start.
            deadline = time.monotonic() + 60
            while _latest(engine) <= began + 3:
                assert time.monotonic() < deadline, "real time never reached the store"
                assert proc.poll() is None, "the simulator exited"
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        stopped = time.time()
        items = [i for r in read(ledger_file) if r["event"] == "publish" for i in r["readings"]]
        stored = {
            (i["meter"], _epoch(i["ts"]), i["value"]) for i in items if i["expect"] == "stored"
        }
        assert wait_for_count(engine, len(stored)) == len(stored)
        assert settle(engine, quiet_s=1.0) == len(stored)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT meter_id, ts, value FROM readings")).all()
    assert {(m, int(ts.timestamp()), v) for m, ts, v in rows} == stored
    times = [ts for _, ts, _ in stored]
    assert min(times) >= began - 120 - 2  # the backfill: two minutes of history
    assert max(times) > began + 3  # then real time, as it happens
    assert max(times) <= stopped + 2  # never ahead of the wall clock
