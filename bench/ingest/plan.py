"""What a run of bench.ingest publishes where: sizes, each run's own day, the
bench's shared state, and the counts that check a run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Literal

from bench.publishers.canonical import EPOCH, Gateway
from bench.publishers.jobs import PublishJob
from bench.stack.broker import PREFIX, Broker
from bench.stack.database import Conn, scalar
from bench.stack.profiler import Profiler
from bench.stack.services import Service
from core import topics
from core.settings import Settings
from ingest.parse import MeterInfo

BASE = datetime(2025, 1, 1, tzinfo=UTC)  # after every sample meter's commissioning
BARE_USER, NAIVE_USER = "svc-ingest-2", "svc-ingest-3"
DATA_FILTERS = tuple(topics.data_filters(PREFIX))
GOALS = {"single_vs_bare": 0.5, "batch_readings_per_s": 100_000, "p99_ms": 500.0}


class Day(IntEnum):
    """Each run writes its readings on its own UTC day (its own chunk), so counts by
    time range never mix runs and TimescaleDB excludes every other chunk."""

    warmup = 0
    copy = 1
    writer = 2
    pipeline = 3
    bare = 4
    single = 5
    batch = 6
    latency_batch = 7
    latency_single = 8
    naive = 9
    bare_drain = 10
    drain = 11


def day_start_us(day: Day) -> int:
    return (int((BASE - EPOCH).total_seconds()) + int(day) * 86_400 + 3600) * 1_000_000


def day_range(day: Day) -> tuple[datetime, datetime]:
    lo = BASE + timedelta(days=int(day))
    return lo, lo + timedelta(days=1)


@dataclass(frozen=True)
class Sizes:
    bare_messages: int
    drain_messages: int
    copy_rows: int
    copy_batch: int
    single_messages: int
    batch_messages: int
    batch_size: int
    latency_seconds: float
    latency_readings_per_s: int
    naive_readings: int
    parse_messages: int
    writer_readings: int


DEFAULT_SIZES = Sizes(
    bare_messages=150_000,
    drain_messages=150_000,
    copy_rows=500_000,
    copy_batch=5000,
    single_messages=150_000,
    batch_messages=8000,
    batch_size=50,
    latency_seconds=20.0,
    latency_readings_per_s=5000,
    naive_readings=20_000,
    parse_messages=20_000,
    writer_readings=200_000,
)
# Under a minute: the same shapes (batch size, offered rate), fewer of everything.
QUICK_SIZES = replace(
    DEFAULT_SIZES,
    bare_messages=30_000,
    drain_messages=30_000,
    single_messages=30_000,
    copy_rows=100_000,
    writer_readings=50_000,
    batch_messages=2000,
    latency_seconds=5.0,
    naive_readings=3000,
    parse_messages=5000,
)


@dataclass
class Bench:
    sizes: Sizes
    settings: Settings  # the throw-away database
    broker: Broker
    gateways: list[Gateway]
    workdir: Path
    conn: Conn  # autocommit, for counts and probes
    profiler: Profiler
    publishers: int = 1
    ingestor: Service | None = None
    meters: dict[str, MeterInfo] = field(default_factory=dict)

    def single_gateways(self) -> list[Gateway]:
        return [g.with_unit("kWh") for g in self.gateways if len(g.with_unit("kWh").meters) >= 3]

    def jobs(
        self,
        kind: Literal["single", "batch"],
        day: Day,
        messages: int,
        publishers: int | None = None,
        rate: float | None = None,
        stamp_values: bool = False,
    ) -> list[PublishJob]:
        """`messages` split over publishers, each its own gateway user and meters."""
        n = publishers or self.publishers
        pool = self.single_gateways() if kind == "single" else self.gateways
        per_message = 1 if kind == "single" else self.sizes.batch_size
        return [
            PublishJob(
                port=self.broker.port,
                user=gw.id,
                password=self.broker.password(gw.id),
                kind=kind,
                site=gw.site,
                gateway=gw.id,
                meters=gw.meters,
                messages=messages // n,
                per_message=per_message,
                base_us=day_start_us(day),
                rate=None if rate is None else rate / n,
                stamp_values=stamp_values,
            )
            for gw in pool[:n]
        ]


def count_day(conn: Conn, day: Day) -> int:
    lo, hi = day_range(day)
    return int(scalar(conn, "SELECT count(*) FROM readings WHERE ts >= %s AND ts < %s", (lo, hi)))


def truncate(conn: Conn) -> None:
    """Between runs: keeps autovacuum of finished runs' chunks out of the next run."""
    conn.execute("TRUNCATE readings, dirty_meter_hours")


def exists(conn: Conn, meter: str, ts: datetime) -> bool:
    sql = "SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s"
    return conn.execute(sql, (meter, ts)).fetchone() is not None
