"""The emissions engine on the real store: incremental hours equal a full
recomputation, whatever the order and batching of arrival (SPEC section 5)."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text

from core.emissions.counters import Reading, Replacement, counter_intervals
from core.emissions.delta import delta_intervals
from core.emissions.hourly import hourly_consumption
from core.meter_kinds import CANONICAL_UNITS
from core.park.loader import parse_park
from core.park.repository import apply_park
from core.settings import Settings
from core.units import convert
from engine import marks as queue
from engine import reads
from engine.marks import record_replacement
from engine.service import BATCH_HOURS, refresh_pass, refresh_until_clean
from ingest.parse import Parsed
from ingest.parse import Reading as InReading
from ingest.writer import BatchWriter, Message
from tests.kit.database import park_database

T0 = datetime(2025, 3, 1, tzinfo=UTC)

PARK: dict[str, Any] = {
    "default_factors": {"electricity": "GRID", "solar": "GRID", "water": "WATER"},
    "factors": [
        {
            "key": "GRID",
            "unit": "kWh",
            "values": [
                {
                    "valid_from": "2022-01-01T00:00:00+07:00",
                    "kgco2e_per_unit": 0.6766,
                    "source": "DCC 2022",
                },
                {
                    "valid_from": "2023-01-01T00:00:00+07:00",
                    "kgco2e_per_unit": 0.6592,
                    "source": "DCC 2023",
                },
            ],
        },
        {
            "key": "WATER",
            "unit": "m3",
            "values": [
                {
                    "valid_from": "2014-01-01T00:00:00+07:00",
                    "kgco2e_per_unit": 0.17088,
                    "source": "DESNZ 2025",
                },
            ],
        },
    ],
    "sites": [
        {
            "id": "S",
            "name": "Site",
            "timezone": "Asia/Ho_Chi_Minh",
            "enterprises": [
                {
                    "id": "E",
                    "name": "Ent",
                    "industry": "plastics",
                    "meters": [
                        {
                            "id": "C",
                            "kind": "electricity",
                            "unit": "kWh",
                            "reading": "counter",
                            "rollover": 1000,
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        },
                        {
                            "id": "MWH",
                            "kind": "electricity",
                            "unit": "MWh",
                            "reading": "counter",
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        },
                        {
                            "id": "D",
                            "kind": "water",
                            "unit": "L",
                            "reading": "delta",
                            "interval_s": 900,
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        },
                        {
                            "id": "PV",
                            "kind": "solar",
                            "unit": "kWh",
                            "reading": "counter",
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        },
                        {
                            "id": "SUB",
                            "kind": "electricity",
                            "unit": "Wh",
                            "reading": "counter",
                            "parent": "C",
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        },
                    ],
                }
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def store(database_factory: Callable[[], Settings]) -> Iterator[tuple[Engine, BatchWriter]]:
    with (
        park_database(database_factory, parse_park(PARK)) as (settings_, engine),
        closing(BatchWriter(settings_.libpq_url)) as writer,
    ):
        yield engine, writer


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE readings, hourly_emissions, dirty_meter_hours, data_quality_events, "
                "enterprise_hourly, site_hourly, meter_replacements, totals_versions"
            )
        )


@pytest.fixture
def fresh(store: tuple[Engine, BatchWriter]) -> tuple[Engine, BatchWriter]:
    """The module's store, emptied for this test."""
    _reset(store[0])
    return store


def _store(writer: BatchWriter, meter: str, readings: list[tuple[datetime, float]]) -> None:
    parsed = Parsed("S", readings=[InReading(meter, ts, v) for ts, v in readings])
    writer.write([Message("t", b"", parsed)])


def _store_and_refresh(
    store: tuple[Engine, BatchWriter], meter: str, readings: list[tuple[datetime, float]]
) -> None:
    """Readings stored as ingest would store them, then the engine run until clean."""
    engine, writer = store
    _store(writer, meter, readings)
    refresh_until_clean(engine)


def _stored(conn: Connection, meter: str) -> dict[datetime, tuple[float, float, bool]]:
    rows = conn.execute(
        text(
            "SELECT hour, consumption, co2e_kg, avoided_co2e_kg, estimated FROM hourly_emissions "
            "WHERE meter_id = :m ORDER BY hour"
        ),
        {"m": meter},
    )
    return {r.hour: (r.consumption, r.co2e_kg + r.avoided_co2e_kg, r.estimated) for r in rows}


def _all_readings(conn: Connection, meter: str) -> list[Reading]:
    rows = conn.execute(
        text("SELECT ts, value FROM readings WHERE meter_id = :m ORDER BY ts"), {"m": meter}
    )
    return [Reading(r.ts, r.value) for r in rows]


def _full(conn: Connection, meter: str, factor: float) -> dict[datetime, tuple[float, float, bool]]:
    """The reference: every hour recomputed from all raw readings at once."""
    readings = _all_readings(conn, meter)
    if meter == "D":
        intervals = delta_intervals(readings, 900)
    else:
        intervals, _ = counter_intervals(readings, 1000.0 if meter == "C" else None, 3600)
    scale = 0.001 if meter == "D" else 1.0
    return {
        hour: (amount, amount * scale * factor, estimated)
        for hour, (amount, estimated) in hourly_consumption(intervals).items()
    }


def _assert_same(
    a: dict[datetime, tuple[float, float, bool]], b: dict[datetime, tuple[float, float, bool]]
) -> None:
    assert a.keys() == b.keys()
    for hour in a:
        assert math.isclose(a[hour][0], b[hour][0], rel_tol=1e-9, abs_tol=1e-9), hour
        assert math.isclose(a[hour][1], b[hour][1], rel_tol=1e-9, abs_tol=1e-9), hour
        assert a[hour][2] == b[hour][2], hour


def _totals_from_meter_hours(
    conn: Connection, level: str
) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """The reference for the totals: meter-hours summed in Python, sub-meters left out."""
    rows = conn.execute(
        text(
            "SELECT h.site_id, h.enterprise_id, h.hour, h.kind, h.unit, h.consumption, "
            "h.co2e_kg, h.avoided_co2e_kg, h.estimated FROM hourly_emissions h "
            "JOIN meters m ON m.id = h.meter_id WHERE m.parent_id IS NULL"
        )
    )
    totals: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        key = (r.site_id if level == "site" else r.enterprise_id, r.hour, r.kind)
        acc = totals.setdefault(key, [0.0, 0.0, 0.0, 0, 0])
        acc[0] += convert(r.consumption, r.unit, CANONICAL_UNITS[r.kind])
        acc[1] += r.co2e_kg
        acc[2] += r.avoided_co2e_kg
        acc[3] += 1
        acc[4] += int(r.estimated)
    return {k: tuple(v) for k, v in totals.items()}


def _assert_totals_match_meter_hours(conn: Connection) -> None:
    for level, table in (("site", "site_hourly"), ("enterprise", "enterprise_hourly")):
        rows = conn.execute(
            text(
                f"SELECT {level}_id AS id, hour, kind, unit, consumption, co2e_kg, "
                f"avoided_co2e_kg, meter_hours, estimated_meter_hours FROM {table}"
            )
        )
        stored = {
            (r.id, r.hour, r.kind): (
                r.consumption,
                r.co2e_kg,
                r.avoided_co2e_kg,
                r.meter_hours,
                r.estimated_meter_hours,
            )
            for r in rows
        }
        expected = _totals_from_meter_hours(conn, level)
        assert stored.keys() == expected.keys(), level
        for key, values in expected.items():
            for got, want in zip(stored[key], values, strict=True):
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (level, key)


counter_streams = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=150),  # minutes since the previous reading
        st.one_of(
            st.floats(min_value=0, max_value=40, allow_nan=False),  # normal increase
            st.just(-1.0),  # glitch / dip to 0
            st.just(-2.0),  # reset to a small value
            st.just(-3.0),  # wrap across the rollover
        ),
    ),
    min_size=2,
    max_size=60,
)


def _counter_values(steps: list[tuple[int, float]]) -> list[tuple[datetime, float]]:
    out: list[tuple[datetime, float]] = []
    t, v = T0, 500.0
    for minutes, step in steps:
        t += timedelta(minutes=minutes)
        if step == -1.0:
            out.append((t, 0.0))
            continue
        if step == -2.0:
            v = 3.0
        elif step == -3.0:
            v = (v + 700.0) % 1000.0
        else:
            v = (v + step) % 1000.0
        out.append((t, v))
    return out


# The examples share the module's `store` (each resets it first), may be slow, and one
# test also takes `monkeypatch`: all as intended.
_ON_THE_STORE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class _Arrival:
    """One counter's readings and how they reach the store: in which order, in how
    many batches between refreshes."""

    steps: list[tuple[int, float]]
    seed: int
    refresh_every: int
    shuffle: bool


def _arrivals(refresh_at_most: int) -> st.SearchStrategy[_Arrival]:
    return st.builds(
        _Arrival,
        steps=counter_streams,
        seed=st.integers(0, 2**32),
        refresh_every=st.integers(1, refresh_at_most),
        shuffle=st.booleans(),
    )


@settings(_ON_THE_STORE, max_examples=100)
@given(arrival=_arrivals(refresh_at_most=5))
def test_incremental_hours_equal_full_recomputation(
    store: tuple[Engine, BatchWriter], arrival: _Arrival
) -> None:
    _check_incremental(store, arrival)


@settings(_ON_THE_STORE, max_examples=30)
@given(arrival=_arrivals(refresh_at_most=3))
def test_a_prefetch_too_small_falls_back_to_queries_and_stays_exact(
    store: tuple[Engine, BatchWriter], monkeypatch: pytest.MonkeyPatch, arrival: _Arrival
) -> None:
    """One reading before each meter's dirty point and nothing after its dirty
    hours: the window logic's questions mostly reach outside the batch's cache."""
    monkeypatch.setattr(reads, "BEFORE", 1)
    monkeypatch.setattr(reads, "AFTER", timedelta(0))
    _check_incremental(store, arrival)


@settings(_ON_THE_STORE, max_examples=30)
@given(arrival=_arrivals(refresh_at_most=3))
def test_a_backlog_cut_into_hour_ranges_stays_exact(
    store: tuple[Engine, BatchWriter], arrival: _Arrival
) -> None:
    """Batches of one meter-hour: every meter with more marks is refreshed
    a range of hours at a time (a rebuild's batches), in any order of arrival."""
    _check_incremental(store, arrival, batch_hours=1)


def _check_incremental(
    store: tuple[Engine, BatchWriter], arrival: _Arrival, batch_hours: int = BATCH_HOURS
) -> None:
    engine, writer = store
    _reset(engine)
    readings = _counter_values(arrival.steps)
    rng = random.Random(arrival.seed)
    refresh_every = arrival.refresh_every
    if arrival.shuffle:
        rng.shuffle(readings)  # any order: late and out-of-order arrivals
    else:  # mostly appends (the real-time case), with a few late readings
        for _ in range(len(readings) // 10):
            i = rng.randrange(len(readings) - 1)
            readings[i], readings[i + 1] = readings[i + 1], readings[i]
    cuts = sorted(rng.sample(range(1, len(readings)), k=min(len(readings) - 1, 8)))
    batches = [readings[i:j] for i, j in zip([0, *cuts], [*cuts, len(readings)], strict=True)]
    for n, batch in enumerate(batches):
        _store(writer, "C", batch)
        # Duplicates on the way, as redeliveries would bring them.
        _store(writer, "C", batch[: len(batch) // 2])
        if n % refresh_every == 0:
            refresh_until_clean(engine, batch_hours=batch_hours)
    refresh_until_clean(engine, batch_hours=batch_hours)
    with engine.connect() as conn:
        _assert_same(_stored(conn, "C"), _full(conn, "C", 0.6592))
        _assert_totals_match_meter_hours(conn)


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a refresh writes; totals keyed, their sums compared loosely below
    (the database may add the same meter-hours in another order)."""
    queries = {
        "hours": "SELECT meter_id, hour, site_id, enterprise_id, kind, scope, consumption, "
        "unit, co2e_kg, avoided_co2e_kg, estimated, factor_value_id FROM hourly_emissions",
        "events": "SELECT meter_id, ts, kind, detail::text FROM data_quality_events",
        "watermarks": "SELECT meter_id, computed_until FROM meter_engine_state",
        "marks": "SELECT meter_id, hour FROM dirty_meter_hours",
        "enterprise": "SELECT enterprise_id, hour, kind, meter_hours, estimated_meter_hours, "
        "consumption, co2e_kg, avoided_co2e_kg FROM enterprise_hourly",
        "site": "SELECT site_id, hour, kind, meter_hours, estimated_meter_hours, "
        "consumption, co2e_kg, avoided_co2e_kg FROM site_hourly",
    }
    with engine.connect() as conn:
        return {k: sorted(tuple(r) for r in conn.execute(text(q))) for k, q in queries.items()}


@settings(_ON_THE_STORE, max_examples=40)
@given(
    streams=st.lists(counter_streams, min_size=4, max_size=4),
    seed=st.integers(0, 2**32),
    batch_meters=st.integers(2, 6),
)
def test_a_batch_of_meters_writes_what_one_meter_at_a_time_writes(
    store: tuple[Engine, BatchWriter],
    streams: list[list[tuple[int, float]]],
    seed: int,
    batch_meters: int,
) -> None:
    """Four counters (one a sub-meter, one solar) and a delta meter, stored in random
    rounds with late readings, refreshed after each round one meter per transaction
    and then again in batches: the same hour rows, events, watermarks and totals."""
    engine, writer = store
    rng = random.Random(seed)
    meters: dict[str, list[tuple[datetime, float]]] = {
        meter: _counter_values(steps)
        for meter, steps in zip(("C", "MWH", "PV", "SUB"), streams, strict=True)
    }
    meters["D"] = [(ts, abs(v)) for ts, v in meters["C"]]
    rounds: list[list[tuple[str, list[tuple[datetime, float]]]]] = [[] for _ in range(4)]
    for meter, readings in meters.items():
        if rng.random() < 0.3:
            rng.shuffle(readings)
        for i, reading in enumerate(readings):
            rounds[min(3, i * 4 // len(readings) + (rng.random() < 0.1))].append((meter, [reading]))
    results = []
    for size in (1, batch_meters):
        _reset(engine)
        for stored in rounds:
            for meter, readings in stored:
                _store(writer, meter, readings)
            refresh_until_clean(engine, batch_meters=size)
        results.append(_snapshot(engine))
    one, many = results
    for key in ("hours", "events", "watermarks", "marks"):
        assert one[key] == many[key], key
    for key in ("enterprise", "site"):
        assert [r[:5] for r in one[key]] == [r[:5] for r in many[key]], key
        for a, b in zip(one[key], many[key], strict=True):
            for x, y in zip(a[5:], b[5:], strict=True):
                assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9), (key, a, b)


def test_monotonic_counter_hours_sum_to_last_minus_first(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    engine = fresh[0]
    rng = random.Random(7)
    t, v, readings = T0, 0.0, []
    for _ in range(400):
        t += timedelta(seconds=rng.randint(30, 5400))
        v += rng.random() * 3
        readings.append((t, v))
    shuffled = readings[:]
    rng.shuffle(shuffled)
    for i in range(0, len(shuffled), 37):
        _store_and_refresh(fresh, "MWH", shuffled[i : i + 37])
    with engine.connect() as conn:
        total = conn.execute(
            text("SELECT sum(consumption) FROM hourly_emissions WHERE meter_id = 'MWH'")
        ).scalar_one()
    assert math.isclose(total, readings[-1][1] - readings[0][1], rel_tol=1e-9)


def test_glitch_to_zero_makes_no_spike_and_is_recorded(fresh: tuple[Engine, BatchWriter]) -> None:
    engine = fresh[0]
    _store_and_refresh(fresh, "C", [(T0, 100.0), (T0 + timedelta(minutes=30), 0.0)])
    with engine.connect() as conn:
        # A dip with no successor yet counts as a reset (consumption 0 -> value 0).
        assert _stored(conn, "C")[T0][0] == 0.0
    _store_and_refresh(fresh, "C", [(T0 + timedelta(minutes=60), 110.0)])
    with engine.connect() as conn:
        hours = _stored(conn, "C")
        events = conn.execute(
            text("SELECT kind, ts FROM data_quality_events WHERE meter_id = 'C'")
        ).all()
    assert math.isclose(hours[T0][0], 10.0)  # 100 -> 110, never a 110 kWh spike
    assert [(e.kind, e.ts) for e in events] == [("glitch", T0 + timedelta(minutes=30))]


def test_interval_across_the_2023_factor_change_in_hanoi_time(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    """2022-12-31T23:00+07:00 .. 2023-01-01T01:00+07:00 is 16:00Z .. 18:00Z; the 2023
    grid factor applies from 17:00Z (midnight in Asia/Ho_Chi_Minh)."""
    engine = fresh[0]
    t0 = datetime.fromisoformat("2022-12-31T23:00:00+07:00")
    _store_and_refresh(fresh, "MWH", [(t0, 10.0), (t0 + timedelta(hours=2), 10.1)])
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT h.hour, h.consumption, h.co2e_kg, v.kgco2e_per_unit "
                "FROM hourly_emissions h "
                "JOIN emission_factor_values v ON v.id = h.factor_value_id "
                "WHERE h.meter_id = 'MWH' ORDER BY h.hour"
            )
        ).all()
    assert [r.hour for r in rows] == [
        datetime(2022, 12, 31, 16, tzinfo=UTC),
        datetime(2022, 12, 31, 17, tzinfo=UTC),
    ]
    assert [r.kgco2e_per_unit for r in rows] == [0.6766, 0.6592]
    # 0.05 MWh each hour = 50 kWh, priced per kWh.
    assert math.isclose(rows[0].co2e_kg, 50 * 0.6766, rel_tol=1e-9)
    assert math.isclose(rows[1].co2e_kg, 50 * 0.6592, rel_tol=1e-9)


def test_delta_meter_spreads_over_its_interval(fresh: tuple[Engine, BatchWriter]) -> None:
    engine = fresh[0]
    # 900 L ending at 01:05Z covers 00:50..01:05: 10 minutes in hour 00, 5 in hour 01.
    _store_and_refresh(fresh, "D", [(T0 + timedelta(hours=1, minutes=5), 900.0)])
    with engine.connect() as conn:
        hours = _stored(conn, "D")
    assert math.isclose(hours[T0][0], 600.0) and math.isclose(
        hours[T0 + timedelta(hours=1)][0], 300.0
    )
    assert math.isclose(hours[T0][1], 0.6 * 0.17088)


def test_solar_is_avoided_never_negative(fresh: tuple[Engine, BatchWriter]) -> None:
    engine = fresh[0]
    _store_and_refresh(fresh, "PV", [(T0, 0.0), (T0 + timedelta(hours=1), 40.0)])
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT co2e_kg, avoided_co2e_kg, scope FROM hourly_emissions WHERE meter_id = 'PV'"
            )
        ).one()
    assert (row.co2e_kg, row.scope) == (0.0, 2)
    assert math.isclose(row.avoided_co2e_kg, 40 * 0.6592)


def test_new_factor_value_restates_exactly_the_hours_it_covers(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    engine = fresh[0]
    start = datetime(2023, 12, 31, 12, tzinfo=UTC)
    _store_and_refresh(fresh, "C", [(start + timedelta(hours=i), 10.0 * i) for i in range(25)])
    with engine.connect() as conn:
        before = _stored(conn, "C")
    data = parse_park(PARK).model_dump(mode="json")
    data["factors"][0]["values"].append(
        {"valid_from": "2024-01-01T00:00:00+07:00", "kgco2e_per_unit": 0.5, "source": "test 2024"}
    )
    with engine.begin() as conn:
        apply_park(conn, parse_park(data))
    refresh_until_clean(engine)
    with engine.connect() as conn:
        after = _stored(conn, "C")
    boundary = datetime(2023, 12, 31, 17, tzinfo=UTC)
    assert before.keys() == after.keys()
    for hour in before:
        if hour >= boundary:
            assert math.isclose(after[hour][1], after[hour][0] * 0.5), hour
        else:
            assert after[hour] == before[hour], hour
    _reset(engine)
    with engine.begin() as conn:  # the other tests price with the original factors
        conn.execute(text("DELETE FROM emission_factor_values WHERE source = 'test 2024'"))


@pytest.mark.parametrize(
    ("arrives", "advanced"),
    [
        (timedelta(minutes=50), True),  # after the watermark: an append
        (timedelta(minutes=25), False),  # late, after the mark's first new reading
        (timedelta(minutes=5), False),  # late, before it
    ],
)
def test_a_mark_restamped_during_a_batch_loses_nothing(
    fresh: tuple[Engine, BatchWriter],
    monkeypatch: pytest.MonkeyPatch,
    arrives: timedelta,
    advanced: bool,
) -> None:
    """Ingest commits a reading into a mark the batch read, before the batch clears
    its marks. The mark survives; its min_ts moves past the new watermark only when
    that reading came after it (so the next pass appends), and either way the
    hours end equal to a full recomputation."""
    engine, writer = fresh
    _store_and_refresh(fresh, "C", [(T0, 10.0), (T0 + timedelta(minutes=10), 20.0)])
    _store(writer, "C", [(T0 + timedelta(minutes=20), 30.0), (T0 + timedelta(minutes=40), 50.0)])
    original = queue.delete_marks

    def ingest_meanwhile(conn: Connection, marks: dict[str, list[Any]]) -> Any:
        if marks:  # once: the first batch that has marks
            monkeypatch.setattr(queue, "delete_marks", original)
            value = {timedelta(minutes=50): 60.0, timedelta(minutes=25): 35.0}.get(arrives, 15.0)
            _store(writer, "C", [(T0 + arrives, value)])
        return original(conn, marks)

    monkeypatch.setattr(queue, "delete_marks", ingest_meanwhile)
    refresh_pass(engine)
    with engine.connect() as conn:
        watermark, min_ts = conn.execute(
            text(
                "SELECT s.computed_until, d.min_ts FROM meter_engine_state s "
                "JOIN dirty_meter_hours d USING (meter_id) WHERE meter_id = 'C'"
            )
        ).one()
    assert watermark == T0 + timedelta(minutes=40)
    assert (min_ts > watermark) is advanced
    refresh_until_clean(engine)
    with engine.connect() as conn:
        _assert_same(_stored(conn, "C"), _full(conn, "C", 0.6592))
        _assert_totals_match_meter_hours(conn)


def test_two_engines_at_once_give_the_same_hours(fresh: tuple[Engine, BatchWriter]) -> None:
    engine, writer = fresh
    rng = random.Random(3)
    readings = _counter_values([(rng.randint(1, 90), rng.random() * 20) for _ in range(300)])
    rng.shuffle(readings)
    for i in range(0, len(readings), 10):
        _store(writer, "C", readings[i : i + 10])
        # Other meters of the same enterprise: both engines rewrite the same totals.
        for meter in ("MWH", "SUB", "PV"):
            _store(
                writer, meter, [(ts, 1000.0 + n) for n, (ts, _) in enumerate(readings[i : i + 10])]
            )
    errors: list[BaseException] = []

    def work() -> None:
        try:
            refresh_until_clean(engine)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    with engine.connect() as conn:
        _assert_same(_stored(conn, "C"), _full(conn, "C", 0.6592))
        _assert_totals_match_meter_hours(conn)


def test_worker_threads_of_one_engine_give_the_same_hours(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    """`refresh_until_clean(workers=3)`, as `engine rebuild` and `engine run` use it:
    batches of one meter, so the workers share the meters of one enterprise."""
    engine, writer = fresh
    rng = random.Random(5)
    readings = _counter_values([(rng.randint(1, 90), rng.random() * 20) for _ in range(200)])
    rng.shuffle(readings)
    for meter in ("C", "MWH", "SUB", "PV"):
        _store(writer, meter, readings)
    written = refresh_until_clean(engine, workers=3, batch_meters=1)
    with engine.connect() as conn:
        assert queue.dirty_count(conn) == 0
        stored = conn.execute(text("SELECT count(*) FROM hourly_emissions")).scalar_one()
        assert written == stored  # each worker's rows counted once
        _assert_same(_stored(conn, "C"), _full(conn, "C", 0.6592))
        _assert_totals_match_meter_hours(conn)


def test_long_backlogs_are_refreshed_a_range_of_hours_at_a_time(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    """Four meters with more marks than a batch holds, arriving after what was
    already priced (a backfill): the plan cuts their hours into ranges shared by
    all four (each batch refreshes its hours' totals once), and two workers working
    through them give the full recomputation."""
    engine, writer = fresh
    rng = random.Random(7)
    readings = _counter_values([(rng.randint(1, 90), rng.random() * 20) for _ in range(200)])
    for meter in ("C", "MWH", "SUB", "PV"):
        _store(writer, meter, readings[:20])
    refresh_until_clean(engine)
    for meter in ("C", "MWH", "SUB", "PV"):
        _store(writer, meter, readings[20:])
    with engine.connect() as conn:
        dirty = queue.dirty_meters(conn, 100)
        plan = queue.plan_batches(conn, dirty, 1000, 20)
    assert len(plan) > 1 and all(b.hours is not None and len(b.meters) == 4 for b in plan)
    assert sum(b.marks for b in plan) == sum(n for _, n in dirty)
    refresh_until_clean(engine, workers=2, batch_hours=20)
    with engine.connect() as conn:
        assert queue.dirty_count(conn) == 0
        _assert_same(_stored(conn, "C"), _full(conn, "C", 0.6592))
        _assert_totals_match_meter_hours(conn)


def test_hour_ranges_hold_at_most_the_limit_unless_one_hour_has_more() -> None:
    h = [T0 + timedelta(hours=k) for k in range(6)]
    counts = [(h[0], 3), (h[1], 2), (h[2], 3), (h[3], 9), (h[4], 1)]
    assert queue.hour_ranges(counts, 5) == [
        ((h[0], h[2]), 5),
        ((h[2], h[3]), 3),
        ((h[3], h[4]), 9),
        ((h[4], h[5]), 1),
    ]
    assert queue.hour_ranges([], 5) == []


def test_a_stop_ends_the_pass_after_the_batch_in_hand(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    engine, writer = fresh
    meters = ("C", "MWH", "SUB", "PV")
    for meter in meters:
        _store(writer, meter, [(T0 + timedelta(minutes=15 * k), 1000.0 + k) for k in range(9)])
    stop = threading.Event()
    refreshed, _ = refresh_pass(engine, batch_meters=1, progress=lambda _: stop.set(), stop=stop)
    assert refreshed == 1  # one batch of one meter, then the stop was seen
    with engine.connect() as conn:
        left = {m for m, _ in queue.dirty_meters(conn, 100)}
    assert len(left) == 3 and left < set(meters)
    refresh_until_clean(engine)  # what the stop left stays marked and is priced later
    with engine.connect() as conn:
        assert queue.dirty_count(conn) == 0
        _assert_same(_stored(conn, "C"), _full(conn, "C", 0.6592))


def test_totals_leave_sub_meters_out_and_add_in_canonical_units(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    engine, writer = fresh
    for meter, start, end in (("C", 10.0, 30.0), ("MWH", 1.0, 1.5), ("SUB", 0.0, 5000.0)):
        _store(writer, meter, [(T0, start), (T0 + timedelta(minutes=30), end)])
    refresh_until_clean(engine)
    with engine.connect() as conn:
        site = conn.execute(
            text("SELECT unit, consumption, meter_hours FROM site_hourly WHERE hour = :h"),
            {"h": T0},
        ).one()
        _assert_totals_match_meter_hours(conn)
    # 20 kWh + 0.5 MWh; the 5,000 Wh sub-meter is part of C's 20 kWh already.
    assert (site.unit, site.meter_hours) == ("kWh", 2)
    assert math.isclose(site.consumption, 520.0)
    # Each rewrite of the day's totals bumps its version (the API's cache key): once
    # per batch, however many of its meters the day holds; the sub-meter's rewrite
    # changes no total and bumps nothing.
    assert _day_versions(engine) == {(T0, "S"): 1}
    _store(writer, "C", [(T0 + timedelta(days=1, minutes=5), 40.0)])
    _store_and_refresh(fresh, "SUB", [(T0 + timedelta(minutes=45), 6000.0)])
    assert _day_versions(engine) == {(T0, "S"): 2, (T0 + timedelta(days=1), "S"): 1}
    _store_and_refresh(fresh, "SUB", [(T0 + timedelta(minutes=50), 6500.0)])
    assert _day_versions(engine) == {(T0, "S"): 2, (T0 + timedelta(days=1), "S"): 1}


def _day_versions(engine: Engine) -> dict[tuple[datetime, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT day, site_id, version FROM totals_versions"))
        return {(r.day, r.site_id): r.version for r in rows}


def test_recorded_replacement_restates_the_hours_across_it(
    fresh: tuple[Engine, BatchWriter],
) -> None:
    engine = fresh[0]
    readings = [(0, 100.0), (20, 150.0), (40, 10.0), (60, 30.0)]
    _store_and_refresh(fresh, "C", [(T0 + timedelta(minutes=m), v) for m, v in readings])
    with engine.connect() as conn:
        assert _stored(conn, "C")[T0][0] == 80.0  # 150 -> 10 reads as a reset: 50 + 10 + 20
    swap = Replacement(T0 + timedelta(minutes=30), 160.0, 0.0)
    with engine.begin() as conn:
        assert record_replacement(conn, "C", swap, "register swapped by the park electrician")
        assert not record_replacement(conn, "C", swap, "twice")
    refresh_until_clean(engine)
    with engine.connect() as conn:
        hours = _stored(conn, "C")
        kinds = conn.execute(
            text("SELECT kind FROM data_quality_events WHERE meter_id = 'C' ORDER BY ts")
        ).scalars()
        _assert_totals_match_meter_hours(conn)
    # 100 -> 150 -> 160 on the old register, 0 -> 10 -> 30 on the new one.
    assert math.isclose(hours[T0][0], 90.0)
    assert list(kinds) == ["replacement"]


def test_prefetched_arrays_become_readings_in_time_order() -> None:
    """The store's arrays follow their subquery's order, which SQL does not promise:
    out of order, they are sorted, and each element is a `Reading` either way."""
    stamps = [T0 + timedelta(minutes=m) for m in (0, 2, 1)]
    ordered = reads.readings_of(stamps[:2], [1.0, 2.0])
    unordered = reads.readings_of(stamps, [1.0, 3.0, 2.0])
    assert ordered == [Reading(stamps[0], 1.0), Reading(stamps[1], 2.0)]
    assert [r.value for r in unordered] == [1.0, 2.0, 3.0]
    assert all(type(r) is Reading and r.ts == r[0] for r in ordered + unordered)
