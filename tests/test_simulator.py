"""The simulator's pure parts: profiles, weather, devices, faults, gateways, determinism.

No broker and no database here; tests/test_simulator_e2e.py runs it against both.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.emissions.counters import Reading as CounterReading
from core.emissions.counters import counter_intervals
from core.meter_kinds import MeterKind
from core.park.device_store import device_rows
from core.park.loader import parse_park
from core.park.models import Industry, Park
from ingest.adapters.base import routes_by_topic
from ingest.devices import parse_any
from ingest.parse import MeterInfo
from simulator import plant, profiles, state, weather
from simulator.faults import Fault, FaultPlan, parse_duration, parse_spec
from simulator.gateway import Gateways, Limits, settle
from simulator.generate import Simulation, readings
from simulator.ledger import Ledger, read
from simulator.messages import Message
from simulator.publisher import NullSink
from simulator.runner import Mode, RunConfig, Runner

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY = datetime(2026, 3, 2, tzinfo=HCM)  # an ordinary week, after Tet
SATURDAY = MONDAY + timedelta(days=5)


def _at(day: datetime, hour: float) -> datetime:
    return day + timedelta(hours=hour)


# ---- profiles ------------------------------------------------------------------------
def test_calendar_knows_tet_and_fixed_holidays() -> None:
    assert profiles.day_type(date(2026, 2, 17)) is profiles.DayType.off  # Tet 2026
    assert profiles.day_type(date(2026, 2, 13)) is profiles.DayType.off  # closed before it
    assert profiles.day_type(date(2025, 1, 29)) is profiles.DayType.off  # Tet 2025
    assert profiles.day_type(date(2027, 2, 6)) is profiles.DayType.off  # Tet 2027
    assert profiles.day_type(date(2026, 9, 2)) is profiles.DayType.off
    assert profiles.day_type(date(2026, 4, 26)) is profiles.DayType.off  # Hung Kings
    assert profiles.day_type(date(2026, 3, 2)) is profiles.DayType.work
    assert profiles.day_type(date(2026, 3, 7)) is profiles.DayType.saturday
    assert profiles.day_type(date(2026, 3, 8)) is profiles.DayType.sunday


def test_industry_shapes_have_their_character() -> None:
    def p(industry: Industry, day: datetime, hour: float) -> float:
        return profiles.production_factor(industry, _at(day, hour))

    wwtp = [p(Industry.wastewater_treatment, MONDAY, h) for h in range(24)]
    assert max(wwtp) / min(wwtp) < 1.3  # flat around the clock
    steel = Industry.steel_structures
    assert p(steel, MONDAY, 10) > 3 * p(steel, MONDAY, 2)  # two shifts, quiet night
    assert p(steel, MONDAY, 20) > 3 * p(steel, MONDAY, 2)  # second shift until 22:00
    garments = Industry.garments
    assert p(garments, SATURDAY, 9) > 4 * p(garments, SATURDAY, 15)  # Saturday half day
    assert p(garments, MONDAY, 15) > 4 * p(garments, SATURDAY, 15)
    food = [p(Industry.food_processing, MONDAY, h) for h in range(24)]
    assert 3 <= food.index(max(food)) <= 9  # early-morning peak
    logistics = [p(Industry.logistics, MONDAY, h) for h in range(24)]
    assert 17 <= logistics.index(max(logistics)) <= 23  # evening peak
    tet = datetime(2026, 2, 18, tzinfo=HCM)
    assert p(garments, _at(tet, 0), 10) < 0.2 * p(garments, MONDAY, 10)


@pytest.mark.parametrize("industry", list(Industry))
def test_load_averages_about_one_over_a_year(industry: Industry) -> None:
    start = datetime(2026, 1, 1, tzinfo=HCM)
    hours = [start + timedelta(hours=h, minutes=17) for h in range(365 * 24)]
    mean = sum(profiles.load_factor(industry, t) for t in hours) / len(hours)
    assert 0.85 < mean < 1.15


def test_cooling_makes_summer_heavier_than_winter() -> None:
    july = profiles.load_factor(Industry.logistics, datetime(2026, 7, 15, 14, tzinfo=HCM))
    january = profiles.load_factor(Industry.logistics, datetime(2026, 1, 14, 14, tzinfo=HCM))
    assert july > 1.3 * january


# ---- weather ---------------------------------------------------------------------------
def test_sun_rises_and_sets_and_never_exceeds_the_plant() -> None:
    noon = datetime(2026, 6, 21, 12, tzinfo=HCM).timestamp()
    midnight = datetime(2026, 6, 21, 0, tzinfo=HCM).timestamp()
    assert weather.clear_sky(midnight) == 0.0
    assert weather.clear_sky(noon) > 0.9
    for seed in range(40):
        sky = weather.day(seed, date(2026, 6, 21), "Asia/Ho_Chi_Minh").sky
        assert 0 <= weather.pv_output(1000, seed, sky, noon) <= 1000


def test_cloudy_days_happen_and_differ_by_seed() -> None:
    days = [date(2026, 3, 1) + timedelta(days=n) for n in range(60)]
    clearness = [weather.day(5, d, "Asia/Ho_Chi_Minh").sky.clearness for d in days]
    assert min(clearness) < 0.4
    assert max(clearness) > 0.85
    other = [weather.day(6, d, "Asia/Ho_Chi_Minh").sky.clearness for d in days]
    assert clearness != other


# ---- faults ----------------------------------------------------------------------------
def test_fault_specs_parse_or_say_what_is_wrong() -> None:
    spec = parse_spec("silent:at=2026-01-05T08:00+07:00,meter=M-1,for=90m")
    assert (spec.kind, spec.meter, spec.for_s) == (Fault.silent, "M-1", 5400)
    assert spec.at == int(datetime(2026, 1, 5, 1, tzinfo=UTC).timestamp())
    assert parse_spec("out-of-order:rate=0.5").kind is Fault.out_of_order
    assert parse_spec("clock_skew:rate=0.1,skew=-30m").skew_s == -1800
    assert parse_duration("1y") == 365 * 86400
    for bad, words in [
        ("gremlin:rate=0.1", "unknown fault"),
        ("glitch", "give rate= or at="),
        ("glitch:rate=2", "between 0 and 1"),
        ("glitch:at=2026-01-05T08:00", "UTC offset"),
        ("glitch:often=1", "not rate="),
        ("late:rate=0.1,for=soon", "not a duration"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_spec(bad)


def test_a_scheduled_fault_fires_once_on_its_meter() -> None:
    plan = FaultPlan([parse_spec("glitch:at=2026-01-05T08:00+07:00,meter=B")], seed=1)
    eligible = {Fault.glitch: ["A", "B"]}
    at = int(datetime(2026, 1, 5, 1, tzinfo=UTC).timestamp())
    assert plan.device_fault("B", 1, at - 60, eligible) is None
    assert plan.device_fault("A", 2, at, eligible) is None
    hit = plan.device_fault("B", 2, at + 5, eligible)
    assert hit is not None and hit.kind is Fault.glitch
    assert plan.device_fault("B", 3, at + 65, eligible) is None


# ---- devices ---------------------------------------------------------------------------
def _one_meter_park(rollover: float | None, kw: int) -> Park:
    meter: dict[str, object] = {
        "id": "T-E-01",
        "kind": "electricity",
        "unit": "kWh",
        "reading": "counter",
        "commissioned_at": "2020-01-01T00:00:00+07:00",
        "description": f"main incomer; ~{kw} kW average load",
    }
    if rollover is not None:
        meter["rollover"] = rollover
    site = {"id": "T", "name": "t", "timezone": "Asia/Ho_Chi_Minh"}
    ent = {"id": "T1", "name": "t", "industry": "plastics", "meters": [meter]}
    factor = {
        "key": "G",
        "unit": "kWh",
        "values": [
            {"valid_from": "2014-01-01T00:00:00+07:00", "kgco2e_per_unit": 0.6, "source": "t"}
        ],
    }
    return parse_park(
        {
            "default_factors": {"electricity": "G"},
            "factors": [factor],
            "sites": [site | {"enterprises": [ent]}],
        }
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), rollover=st.sampled_from([1000.0, 5000.0, None]))
def test_counter_registers_only_go_up_or_wrap(seed: int, rollover: float | None) -> None:
    park = _one_meter_park(rollover, 900)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    sim = Simulation(park, seed=seed, start=start, interval_s=60)
    samples, events = sim.advance(int(start.timestamp()) + 6 * 3600)
    values = [s.value for s in samples]
    times = [s.ts for s in samples]
    assert 359 <= len(values) <= 361  # every minute, jitter at both ends
    assert times == sorted(times) and len(set(times)) == len(times)
    drops = sum(1 for a, b in itertools.pairwise(values) if b < a)
    assert drops == len(events)  # every drop is a logged wrap, nothing else
    if rollover is not None:
        assert all(0 <= v < rollover for v in values)
        assert {e.dq for e in events} <= {"wrap"}


def test_a_rollover_fault_wraps_the_register_near_its_time() -> None:
    park = _one_meter_park(1_000_000.0, 900)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    spec = parse_spec("rollover:at=2026-03-02T12:00+00:00")
    sim = Simulation(park, seed=3, start=start, end=start + timedelta(days=1), faults=[spec])
    _, events = sim.advance(int((start + timedelta(days=1)).timestamp()))
    (wrap,) = events
    assert wrap.fault == "rollover" and wrap.dq == "wrap"
    assert abs(wrap.ts - spec.at) < 1800  # type: ignore[operator]


# ---- gateways: what the ingestor will make of each message ------------------------------
def _meters(park: Park) -> dict[str, MeterInfo]:
    return {
        m.id: MeterInfo(m.id, s.id, m.unit, m.commissioned_at, gateway_id=e.gateway_id)
        for s, e, m in park.meters()
    }


@pytest.mark.parametrize("kind", ["malformed", "oversized", "unknown_meter", "nan", "clock_skew"])
def test_faulty_messages_are_rejected_for_the_reason_the_ledger_gives(
    sample_park: Park, kind: str
) -> None:
    """Cross-check with the ingestor's own parser (the e2e test checks the store)."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    specs = [parse_spec(f"{kind}:rate=0.05")]
    sim = Simulation(sample_park, seed=9, start=start, faults=specs)
    gws = Gateways(sample_park, "parks", sim.plan, Limits(), 9, 60)
    meters, now = _meters(sample_park), start + timedelta(days=1)
    routes = routes_by_topic(device_rows(sample_park))  # the park's LoRaWAN and Shelly devices
    checked = 0
    for tick in range(int(start.timestamp()) // 60, int(start.timestamp()) // 60 + 120):
        samples, _ = sim.advance((tick + 1) * 60)
        for m in gws.batches(tick, (tick + 1) * 60, samples):
            settle(m, now.timestamp(), Limits(), gws.commissioned)
            parsed = parse_any(m.topic, m.payload, "parks", meters, routes, now)
            want = sorted(str(i.reason) for i in m.items if i.expect == "quarantined")
            got = sorted(r.reason.value for r in parsed.rejections)
            if m.reason:
                assert got == [m.reason]
            else:
                assert got == want
                stored = [i for i in m.items if i.expect == "stored"]
                assert [(r.meter_id, r.value) for r in parsed.readings] == [
                    (i.meter, i.value) for i in stored
                ]
            checked += bool(got)
    assert checked > 0


def test_oversized_is_over_the_ingest_limit(sample_park: Park) -> None:
    gws = Gateways(sample_park, "parks", None, Limits(max_payload_bytes=4096), 1, 60)
    m = Message(1, "NCK-STL1-GW", gws.topic("NCK-STL1-GW"), 0, [])
    good, bad = gws._apply(m, parse_spec("oversized:rate=1"), 0)
    assert good is m and good.reason is None  # the real batch still goes out
    assert len(bad.payload) > 4096 and bad.reason == "oversized"


# ---- determinism -----------------------------------------------------------------------
def test_the_same_seed_gives_the_same_readings(sample_park: Park) -> None:
    start = datetime(2026, 7, 6, tzinfo=UTC)
    end = start + timedelta(hours=6)
    first = list(readings(sample_park, start, end, seed=42))
    again = list(readings(sample_park, start, end, seed=42))
    other = list(readings(sample_park, start, end, seed=43))
    assert len(first) > 15_000
    assert all(start <= r.ts < end for r in first)
    assert first == again
    assert [r.value for r in first] != [r.value for r in other]


def test_an_enterprise_does_not_depend_on_the_others(sample_park: Park) -> None:
    start = datetime(2026, 7, 6, tzinfo=UTC)
    end = start + timedelta(hours=3)
    data = sample_park.model_dump(mode="json")
    data["sites"][0]["enterprises"] = data["sites"][0]["enterprises"][2:3]
    alone = parse_park(data)
    ids = {m.id for _, _, m in alone.meters()}
    together = [r for r in readings(sample_park, start, end, seed=1) if r.meter_id in ids]
    assert together == list(readings(alone, start, end, seed=1))


def test_the_same_seed_gives_the_same_ledger_with_faults(sample_park: Park, tmp_path: Path) -> None:
    faults = [parse_spec(f"{f.value}:rate=0.01") for f in Fault if f is not Fault.rollover]
    start = datetime(2026, 1, 5, tzinfo=UTC)
    config = RunConfig(Mode.accelerated, start, start + timedelta(hours=2), seed=5, faults=faults)
    runs = []
    for n in range(2):
        path = tmp_path / f"ledger-{n}.jsonl"
        Runner(sample_park, config, NullSink(), Ledger(path), clock=lambda: 1.8e9).run()
        runs.append([r for r in read(path) if r["event"] != "summary"])
    assert runs[0] == runs[1]
    kinds = {r.get("fault") for r in runs[0]}
    assert {"duplicate", "late", "glitch", "nan"} <= kinds


# ---- sizes -----------------------------------------------------------------------------
def test_park_grid_electricity_is_plausible(sample_park: Park) -> None:
    """~3-4.5 MWh/h of grid electricity on the main meters in 2026 (the roadmap's scale)."""
    start = datetime(2026, 3, 2, tzinfo=HCM)
    end = start + timedelta(days=7)
    mains = {
        m.id: m
        for _, _, m in sample_park.meters()
        if m.kind is MeterKind.electricity and m.parent is None
    }
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in readings(sample_park, start, end, seed=1, interval_s=900):
        if r.meter_id in mains:
            first.setdefault(r.meter_id, r.value)
            last[r.meter_id] = r.value
    total = 0.0
    for meter_id, meter in mains.items():
        used = last[meter_id] - first[meter_id]
        total += used + (meter.rollover or 0) * (used < 0)
    assert 3000 < total / (7 * 24) < 4500
    assert not math.isnan(plant.efficiency(start.timestamp()))


def test_ledger_data_quality_expectations_agree_with_spec_section_5(
    test_park: Park, tmp_path: Path
) -> None:
    """Heavy fault rates: the ledger's `dq` per fault must be exactly what SPEC 5's rules
    (core.emissions.counters, the engine's pure core) derive from the stored readings."""
    rates = {
        "glitch": 0.003, "reset": 0.001, "silent": 0.001, "nan": 0.003, "clock_skew": 0.002,
        "malformed": 0.05, "oversized": 0.02, "late": 0.02, "out_of_order": 0.02,
        "duplicate": 0.02, "conflict": 0.02, "rollover": 0.001,
    }  # fmt: skip
    faults = [parse_spec(f"{k}:rate={v},for=100m") for k, v in rates.items()]
    start = datetime(2026, 1, 5, tzinfo=UTC)
    end = start + timedelta(hours=8)
    config = RunConfig(Mode.accelerated, start, end, seed=3, faults=faults, catchup_batch_s=600)
    path = tmp_path / "ledger.jsonl"
    Runner(test_park, config, NullSink(), Ledger(path), clock=end.timestamp).run()
    records = read(path)
    meters = {m.id: m for _, _, m in test_park.meters()}
    stored: dict[str, list[CounterReading]] = {}
    for r in records:
        for i in r.get("readings", []) if r["event"] == "publish" else []:
            if i["expect"] == "stored" and meters[i["meter"]].reading == "counter":
                ts = datetime.fromisoformat(i["ts"])
                stored.setdefault(i["meter"], []).append(CounterReading(ts, i["value"]))
    derived = set()
    for meter_id, points in stored.items():
        meter = meters[meter_id]
        _, events = counter_intervals(points, meter.rollover, meter.max_gap_s)
        derived |= {(meter_id, e.ts.timestamp(), e.kind) for e in events}
    expected = {
        (r["meter"], datetime.fromisoformat(r["ts"]).timestamp(), r["dq"])
        for r in records
        if r["event"] == "fault" and r["dq"]
    }
    cutoff = (end - timedelta(minutes=30)).timestamp()  # a trailing dip is a reset for now
    assert {e for e in derived if e[1] < cutoff} == {e for e in expected if e[1] < cutoff}
    assert {kind for *_, kind in expected} >= {"glitch", "reset", "wrap", "long_gap"}


def _stored(path: Path) -> dict[tuple[str, str], float]:
    return {
        (i["meter"], i["ts"]): i["value"]
        for r in read(path)
        if r["event"] == "publish"
        for i in r["readings"]
    }


def test_a_restart_with_state_continues_history_unchanged(
    sample_park: Park, tmp_path: Path
) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    middle, end = start + timedelta(hours=2), start + timedelta(hours=4)
    clock = (end + timedelta(days=1)).timestamp

    def run(first: datetime, last: datetime, name: str, keep: Path | None) -> Path:
        saved = state.load(keep, 1) if keep is not None and keep.exists() else None
        resume = state.resume_start(saved, int(first.timestamp()))
        begin = datetime.fromtimestamp(resume, UTC) if resume is not None else first
        runner = Runner(
            sample_park,
            RunConfig(Mode.accelerated, begin, last, seed=1),
            NullSink(),
            Ledger(tmp_path / name),
            clock=clock,
            state_path=keep,
        )
        if saved is not None and resume is not None:
            state.restore(runner.sim, saved)
        runner.run()
        return tmp_path / name

    whole = _stored(run(start, end, "whole.jsonl", None))
    keep = tmp_path / "state.json"
    first = _stored(run(start, middle, "first.jsonl", keep))
    # asked to start earlier, it resumes where the first run stopped: no history rewritten
    second = _stored(run(start, end, "second.jsonl", keep))
    assert not first.keys() & second.keys()
    assert first | second == whole
    # after two hours down, the registers have counted what was used meanwhile
    later = _stored(run(end + timedelta(hours=2), end + timedelta(hours=3), "later.jsonl", keep))
    counters = {
        m.id for _, _, m in sample_park.meters() if m.reading == "counter" and m.max_gap_s < 7200
    }  # (pulse meters read hourly may have no reading in this hour)
    for meter in counters - {m for m, _ in later}:
        pytest.fail(f"{meter} has no reading after the restart")
    for (meter, ts), value in later.items():
        if meter in counters and meter.endswith("E-01"):
            before = max((t, v) for (m, t), v in second.items() if m == meter)[1]
            assert value >= before or value < before / 2  # counted on (or wrapped)
            assert ts >= (end + timedelta(hours=2)).isoformat().replace("+00:00", "Z")


def test_a_restart_with_another_interval_continues_the_registers(
    sample_park: Park, tmp_path: Path
) -> None:
    """The demo backfills older history hourly, then reads every minute from the same
    state: the second run must start at once and count on from the saved registers."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    middle, end = start + timedelta(hours=6), start + timedelta(hours=7)
    keep = tmp_path / "state.json"
    clock = (end + timedelta(days=1)).timestamp

    def run(first: datetime, last: datetime, interval_s: int, name: str) -> Path:
        saved = state.load(keep, 1) if keep.exists() else None
        resume = state.resume_start(saved, int(first.timestamp()))
        config = RunConfig(Mode.accelerated, first, last, seed=1, interval_s=interval_s, jitter_s=0)
        runner = Runner(
            sample_park, config, NullSink(), Ledger(tmp_path / name), clock=clock, state_path=keep
        )
        if saved is not None and resume is not None:
            state.restore(runner.sim, saved)
        runner.run()
        return tmp_path / name

    hourly = _stored(run(start, middle, 3600, "hourly.jsonl"))
    minutes = _stored(run(middle, end, 60, "minutes.jsonl"))
    meter = "NCK-WWTP-E-01"
    last_hourly = max((t, v) for (m, t), v in hourly.items() if m == meter)
    after = sorted((t, v) for (m, t), v in minutes.items() if m == meter)
    assert len(after) >= 55  # a reading a minute for the hour, not a walk through old slots
    assert after[0][1] >= last_hourly[1]  # the register counted on: no reset at the seam
