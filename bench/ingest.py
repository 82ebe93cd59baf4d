"""Ingest benchmark: ceilings, the ingestor end to end, latency at a fixed rate, a naive baseline.

Everything runs on this machine in one go: a throw-away database on the project's
PostgreSQL + TimescaleDB instance, a Mosquitto broker rendered from the project's
own configuration on a free port, publisher processes (multiprocessing, so they
share no GIL with what they measure) and `emissions ingest` as a subprocess. All
of it is removed at the end, on Ctrl-C and on errors too. bench/README.md says
what each figure means and how it is measured.

    .venv/bin/python bench/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import importlib.metadata
import json
import math
import multiprocessing as mp
import multiprocessing.queues
import multiprocessing.synchronize
import os
import platform
import queue
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
# `python bench/ingest.py` puts bench/ first on sys.path, where this file would
# shadow the `ingest` package: put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.reasoncodes import ReasonCode  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from bench.adapters import canonical_park, run_adapters  # noqa: E402
from core import migrate  # noqa: E402
from core.broker.render import BrokerLimits, render_broker  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from core.park.loader import load_park  # noqa: E402
from core.park.models import Park  # noqa: E402
from core.park.repository import apply_park  # noqa: E402
from core.paths import mqtt_password_file  # noqa: E402
from core.settings import Settings  # noqa: E402
from ingest.meters import MeterRegistry  # noqa: E402
from ingest.parse import Limits, MeterInfo, parse_message  # noqa: E402
from ingest.pipeline import BatchPolicy, Pipeline  # noqa: E402
from ingest.writer import BatchWriter, Message  # noqa: E402

PREFIX = "parks"
SITE_TZ = timezone(timedelta(hours=7))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime(2025, 1, 1, tzinfo=UTC)  # after every sample meter's commissioning
STEP_US = 1000  # consecutive readings of a run are 1 ms apart: (meter, ts) never repeats
INGEST_USER, BARE_USER, NAIVE_USER = "svc-ingest-1", "svc-ingest-2", "svc-ingest-3"
DATA_FILTERS = (f"{PREFIX}/+/meters/+", f"{PREFIX}/+/gateways/+")
# Publisher's QoS 1 window. Kept moderate on purpose: paho re-scans its whole outgoing
# table on every PUBACK once messages queue behind a full window (_update_inflight),
# so a 2,000 window with a deep queue published at a third of the rate of this one.
INFLIGHT = 100
GOALS = {"single_vs_bare": 0.5, "batch_readings_per_s": 100_000, "p99_ms": 500.0}

console = Console()
Conn = psycopg.Connection[tuple[Any, ...]]


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


def us_to_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


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
QUICK_SIZES = Sizes(
    bare_messages=30_000,
    drain_messages=30_000,
    copy_rows=100_000,
    copy_batch=5000,
    single_messages=30_000,
    batch_messages=2000,
    batch_size=50,
    latency_seconds=5.0,
    latency_readings_per_s=5000,
    naive_readings=3000,
    parse_messages=5000,
    writer_readings=50_000,
)


# --- the park's gateways and what they may publish ------------------------------------


@dataclass(frozen=True)
class Gateway:
    id: str
    site: str
    meters: tuple[tuple[str, str], ...]  # (meter id, unit)

    def with_unit(self, unit: str) -> Gateway:
        return Gateway(self.id, self.site, tuple(m for m in self.meters if m[1] == unit))


def park_gateways(park: Park) -> list[Gateway]:
    return [
        Gateway(ent.gateway_id, site.id, tuple((m.id, str(m.unit)) for m in ent.meters))
        for site in park.sites
        for ent in site.enterprises
        if ent.meters
    ]


# --- publisher processes ---------------------------------------------------------------


@dataclass(frozen=True)
class PublishJob:
    """N messages from one gateway user: single readings on its meters' topics, or
    batches on its gateway topic. Reading r (r = message * per_message + j) is for
    meter r mod len(meters) at base + r ms, with value r, or the publish wall-clock
    time when `stamp_values` (for latency)."""

    port: int
    user: str
    password: str
    kind: Literal["single", "batch"]
    site: str
    gateway: str
    meters: tuple[tuple[str, str], ...]
    messages: int
    per_message: int
    base_us: int
    rate: float | None = None  # messages per second; None: as fast as possible
    stamp_values: bool = False

    @property
    def readings(self) -> int:
        return self.messages * self.per_message

    def reading(self, r: int) -> tuple[str, str, int]:
        meter, unit = self.meters[r % len(self.meters)]
        return meter, unit, self.base_us + r * STEP_US

    def last_key(self) -> tuple[str, datetime]:
        meter, _, us = self.reading(self.readings - 1)
        return meter, us_to_dt(us)

    def message(self, k: int, stamp: float | None = None) -> tuple[str, bytes]:
        if self.kind == "single":
            meter, unit, us = self.reading(k)
            ts = us_to_dt(us).astimezone(SITE_TZ).isoformat(timespec="milliseconds")
            value = float(k) if stamp is None else stamp
            payload = f'{{"ts": "{ts}", "value": {value!r}, "unit": "{unit}"}}'
            return f"{PREFIX}/{self.site}/meters/{meter}", payload.encode()
        parts = []
        for j in range(self.per_message):
            r = k * self.per_message + j
            meter, unit, us = self.reading(r)
            value = float(r) if stamp is None else stamp
            parts.append(
                f'{{"meter": "{meter}", "ts": {us // 1_000_000}.{us % 1_000_000:06d}, '
                f'"value": {value!r}, "unit": "{unit}"}}'
            )
        payload = '{"readings": [' + ", ".join(parts) + "]}"
        return f"{PREFIX}/{self.site}/gateways/{self.gateway}", payload.encode()


@dataclass(frozen=True)
class PublishReport:
    user: str
    first_publish: float
    last_publish: float
    all_acked: float
    messages: int
    readings: int
    max_lag_s: float  # paced runs: worst delay behind the schedule


class _PubState:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.acked = 0
        self.acked_at = 0.0
        self.refused = ""
        self.connected = threading.Event()
        self.all_acked = threading.Event()


def _publish_loop(
    client: mqtt.Client,
    job: PublishJob,
    state: _PubState,
    prebuilt: list[tuple[str, bytes]] | None,
) -> float:
    """Publish every message (paced if `job.rate`); returns the worst lag behind schedule."""
    lag = 0.0
    rate = job.rate or math.inf
    t0 = time.perf_counter()
    for k in range(job.messages):
        while k - state.acked >= INFLIGHT:
            client.loop(0.005)
        if job.rate is not None:
            due = t0 + k / rate
            now = time.perf_counter()
            while now < due:
                client.loop(min(due - now, 0.005))
                now = time.perf_counter()
            lag = max(lag, now - due)
        if prebuilt is not None:
            topic, payload = prebuilt[k]
        else:
            topic, payload = job.message(k, time.time() if job.stamp_values else None)
        client.publish(topic, payload, qos=1)  # written to the socket right away
        if k % 32 == 0:
            client.loop(0)
    return lag


def _publish(
    job: PublishJob, ready: multiprocessing.synchronize.Event, go: multiprocessing.synchronize.Event
) -> PublishReport:
    state = _PubState(job.messages)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=job.user,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=True,
    )
    client.username_pw_set(job.user, job.password)
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)  # (never used: see the loop below)

    def on_connect(
        c: mqtt.Client,
        u: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            state.refused = str(reason)
        state.connected.set()

    def on_publish(
        c: mqtt.Client, u: object, mid: int, reason: ReasonCode, props: Properties | None
    ) -> None:
        state.acked += 1
        if state.acked >= state.expected:
            state.acked_at = time.time()
            state.all_acked.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    # One thread drives paho's loop by hand: no GIL hand-off to a loop thread, and
    # never more than INFLIGHT unacknowledged, so nothing queues inside paho.
    client.connect("127.0.0.1", job.port, keepalive=60)
    try:
        deadline = time.monotonic() + 10
        while not state.connected.is_set() and time.monotonic() < deadline:
            client.loop(0.05)
        if not state.connected.is_set() or state.refused:
            raise RuntimeError(f"broker refused {job.user}: {state.refused or 'no CONNACK'}")
        prebuilt = None
        if job.rate is None and not job.stamp_values:
            prebuilt = [job.message(k) for k in range(job.messages)]
        ready.set()
        deadline = time.monotonic() + 600
        while not go.wait(0.05):
            client.loop(0)  # keep the connection alive while waiting
            if time.monotonic() > deadline:
                raise TimeoutError("no start signal")
        first, lag = time.time(), _publish_loop(client, job, state, prebuilt)
        last = time.time()
        deadline = time.monotonic() + max(120.0, job.messages / 500)
        while not state.all_acked.is_set() and time.monotonic() < deadline:
            client.loop(0.01)
        if not state.all_acked.is_set():
            raise TimeoutError(f"{state.acked} of {job.messages} PUBACKs")
        return PublishReport(job.user, first, last, state.acked_at, job.messages, job.readings, lag)
    finally:
        client.disconnect()
        client.loop(0.01)


def publisher_main(
    job: PublishJob,
    ready: multiprocessing.synchronize.Event,
    go: multiprocessing.synchronize.Event,
    out: multiprocessing.queues.Queue[PublishReport | str],
) -> None:
    """Entry point of a publisher process; reports or an error string go to `out`."""
    try:
        out.put(_publish(job, ready, go))
    except BaseException as exc:  # Ctrl-C included: the parent must hear of it
        out.put(f"publisher {job.user}: {type(exc).__name__}: {exc}")
    finally:
        ready.set()


class PublisherGroup:
    """Publisher processes started together, ready (connected, payloads built), then
    released at once by `go`."""

    def __init__(self, jobs: Sequence[PublishJob]) -> None:
        ctx = mp.get_context("spawn")
        self._jobs = list(jobs)
        self._go = ctx.Event()
        self._out: multiprocessing.queues.Queue[PublishReport | str] = ctx.Queue()
        self._ready = [ctx.Event() for _ in jobs]
        self._procs = [
            ctx.Process(
                target=publisher_main,
                args=(job, ready, self._go, self._out),
                name=f"publisher-{job.user}",
                daemon=True,
            )
            for job, ready in zip(jobs, self._ready, strict=True)
        ]

    def __enter__(self) -> PublisherGroup:
        try:
            for proc in self._procs:
                proc.start()
            for ready in self._ready:
                if not ready.wait(120):
                    raise TimeoutError("publisher did not get ready")
            with contextlib.suppress(queue.Empty):  # an error before the start signal
                early = self._out.get(timeout=0.2)
                raise RuntimeError(str(early))
        except BaseException:
            self.__exit__()
            raise
        return self

    def go(self) -> float:
        started = time.time()
        self._go.set()
        return started

    def results(self, timeout: float) -> list[PublishReport]:
        reports = []
        deadline = time.monotonic() + timeout
        for _ in self._jobs:
            item = self._out.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(item, str):
                raise RuntimeError(item)
            reports.append(item)
        return reports

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.join(2 if proc.is_alive() else 0)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        self._out.close()


# --- processes, broker, database --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Broker:
    port: int
    state_dir: Path
    config_dir: Path
    proc: subprocess.Popen[bytes]

    def password(self, user: str) -> str:
        return mqtt_password_file(self.state_dir, user).read_text(encoding="utf-8").strip()


def start_broker(park: Park, base: Path, stack: contextlib.ExitStack) -> Broker:
    """Like tests/conftest.py: the project's rendered configuration on a free port."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    state_dir, config_dir = base / "state", base / "mosquitto"
    port = free_port()
    render_broker(park, config_dir, state_dir=state_dir, prefix=PREFIX, bind="127.0.0.1", port=port)
    proc = subprocess.Popen(
        [mosquitto, "-c", str(config_dir / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us; we stop it after the ingestor
    )
    stack.callback(stop_process, proc)
    wait_for_port(port, proc)
    return Broker(port, state_dir, config_dir, proc)


def create_database(park: Park, stack: contextlib.ExitStack) -> Settings:
    admin = create_engine(Settings().database_url, isolation_level="AUTOCOMMIT")
    stack.callback(admin.dispose)
    name = f"emissions_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    stack.callback(drop)
    settings = Settings(db_name=name)
    engine = create_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            apply_park(conn, park)
    finally:
        engine.dispose()
    return settings


def db_connect(settings: Settings, autocommit: bool = True) -> Conn:
    return psycopg.connect(settings.libpq_url, autocommit=autocommit)


def scalar(conn: Conn, sql: str, params: Sequence[object] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def count_day(conn: Conn, day: Day) -> int:
    lo, hi = day_range(day)
    return int(scalar(conn, "SELECT count(*) FROM readings WHERE ts >= %s AND ts < %s", (lo, hi)))


def truncate(conn: Conn) -> None:
    """Between runs: keeps autovacuum of finished runs' chunks out of the next run."""
    conn.execute("TRUNCATE readings, dirty_meter_hours")


def exists(conn: Conn, meter: str, ts: datetime) -> bool:
    sql = "SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s"
    return conn.execute(sql, (meter, ts)).fetchone() is not None


def pct(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


# --- MQTT clients in this process ------------------------------------------------------


def mqtt_connect(
    port: int,
    user: str,
    password: str,
    clean_session: bool = True,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None] | None = None,
) -> tuple[mqtt.Client, threading.Event]:
    """Connected client with its loop running; the event is set on SUBACK. `on_message`
    is set before connecting: a resumed session delivers right after CONNACK."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=user,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=clean_session,
    )
    client.username_pw_set(user, password)
    connected, subscribed = threading.Event(), threading.Event()
    refused: list[str] = []

    def on_connect(
        c: mqtt.Client,
        u: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    def on_subscribe(
        c: mqtt.Client,
        u: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not connected.wait(10) or refused:
        client.loop_stop()
        raise RuntimeError(f"broker refused {user}: {refused or 'no CONNACK'}")
    return client, subscribed


def mqtt_close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def wipe_session(broker: Broker, user: str) -> None:
    """A persistent session left behind would make the broker queue every later
    run's messages for it: connect once with clean_session=True to discard it."""
    client, _ = mqtt_connect(broker.port, user, broker.password(user), clean_session=True)
    mqtt_close(client)


class Subscriber:
    """A bare paho subscriber (QoS 1, 3.1.1, clean_session=False, paho's automatic
    ack after the callback) that counts messages: ceiling A. With `conninfo` it is the
    naive baseline: one autocommit INSERT per reading inside the callback."""

    INSERT = (
        "INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s) "
        "ON CONFLICT (meter_id, ts) DO NOTHING"
    )

    def __init__(self, broker: Broker, user: str, expected: int, conninfo: str | None = None):
        self._broker = broker
        self._user = user
        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.errors: list[str] = []
        self.done = threading.Event()
        self._conn = psycopg.connect(conninfo, autocommit=True) if conninfo else None
        self._client: mqtt.Client | None = None

    def start(self) -> None:
        client, subscribed = mqtt_connect(
            self._broker.port,
            self._user,
            self._broker.password(self._user),
            clean_session=False,
            on_message=self._on_message,
        )
        self._client = client
        client.subscribe([(f, 1) for f in DATA_FILTERS])
        if not subscribed.wait(10):
            raise TimeoutError(f"{self._user}: no SUBACK")

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if self._conn is not None:
            try:
                doc = json.loads(msg.payload)
                meter = msg.topic.rsplit("/", 1)[1]
                ts = datetime.fromisoformat(doc["ts"])
                self._conn.execute(self.INSERT, (meter, ts, float(doc["value"])))
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return
        self.count += 1
        if self.count == 1:
            self.first = time.time()
        if self.count >= self.expected:
            self.last = time.time()
            self.done.set()

    def disconnect(self) -> None:
        """Leave, keeping the session: the broker queues for it from now on."""
        if self._client is not None:
            mqtt_close(self._client)
            self._client = None

    def close(self) -> None:
        self.disconnect()
        wipe_session(self._broker, self._user)
        if self._conn is not None:
            self._conn.close()


# --- the ingestor subprocess ------------------------------------------------------------


class IngestorDiedError(RuntimeError):
    pass


class Ingestor:
    """A service subprocess with a health port: the ingestor by default; `name`,
    `log_name` and `metric_prefix` let bench/engine.py run the engine with it."""

    def __init__(
        self,
        cmd: list[str],
        env: dict[str, str],
        health_port: int,
        workdir: Path,
        *,
        name: str = "ingestor",
        log_name: str = "ingest.log",
        metric_prefix: str = "emissions_ingest_",
    ):
        self.cmd = cmd
        self.env = env
        self.health_port = health_port
        self.workdir = workdir
        self.name = name
        self.metric_prefix = metric_prefix
        self.log_path = workdir / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise IngestorDiedError(
                f"{self.name} exited ({code}); its log ends:\n{self.log_tail()}"
            )

    def _get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status), resp.read().decode()

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with contextlib.suppress(OSError):
                # /readyz: for ingest, the broker granted its subscriptions.
                if self._get("/readyz")[0] == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def metrics(self) -> dict[str, float]:
        """The service's own metrics (emissions_ingest_* by default), label sets included."""
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in self._get("/metrics")[1].splitlines():
                if line.startswith(self.metric_prefix):
                    name, _, value = line.rpartition(" ")
                    with contextlib.suppress(ValueError):
                        out[name] = float(value)
        return out

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the ingestor did in one run: outcome counts, mean batch size and commit time."""

    def d(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    batches = d("emissions_ingest_commit_duration_seconds_count")
    out = {
        "messages": d("emissions_ingest_messages_total"),
        "stored": d('emissions_ingest_readings_total{result="stored"}'),
        "duplicate": d('emissions_ingest_readings_total{result="duplicate"}'),
        "conflict": d('emissions_ingest_readings_total{result="conflict"}'),
        "quarantined": d('emissions_ingest_readings_total{result="quarantined"}'),
        "batches": batches,
        "db_errors": d("emissions_ingest_database_errors_total"),
    }
    if batches:
        out["mean_batch_readings"] = d("emissions_ingest_batch_readings_sum") / batches
        out["mean_commit_ms"] = 1000 * d("emissions_ingest_commit_duration_seconds_sum") / batches
    return out


class Profiler:
    """Optional py-spy recording of the ingestor during a run (it costs CPU: the
    figures of a profiled run are not comparable)."""

    def __init__(
        self,
        binary: str | None,
        fmt: str,
        out_dir: Path,
        stamp: str,
        gil: bool = False,
        prefix: str = "ingest",
    ) -> None:
        self.binary = binary
        self.prefix = prefix
        self.fmt = fmt
        self.gil = gil
        self.out_dir = out_dir
        self.stamp = stamp
        self.files: list[str] = []

    @contextlib.contextmanager
    def record(self, pid: int, phase: str, settle: float = 0.5) -> Iterator[None]:
        if not self.binary:
            yield
            return
        ext = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[self.fmt]
        out = self.out_dir / f"{self.prefix}-{self.stamp}-{phase}.{ext}"
        cmd = [self.binary, "record", "-p", str(pid), "-r", "200", "-f", self.fmt, "-o", str(out)]
        if self.gil:
            cmd.append("--gil")  # only the thread holding the GIL: where the CPU goes
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(settle)  # let py-spy attach before the run starts
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            self.files.append(str(out))


# --- the runs ---------------------------------------------------------------------------


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
    ingestor: Ingestor | None = None
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


def run_parse(bench: Bench) -> dict[str, Any]:
    """Diagnostic: the pure parser, in this process."""
    now = datetime.now(UTC)
    limits = Limits()
    out: dict[str, Any] = {}
    n = bench.sizes.parse_messages
    runs: tuple[tuple[Literal["single", "batch"], int], ...] = (
        ("single", n),
        ("batch", max(1, n // bench.sizes.batch_size)),
    )
    for kind, messages in runs:
        [job] = bench.jobs(kind, Day.pipeline, messages, publishers=1)
        payloads = [job.message(k) for k in range(job.messages)]
        t0 = time.perf_counter()
        rejected = 0
        for topic, payload in payloads:
            rejected += len(
                parse_message(topic, payload, PREFIX, bench.meters, now, limits).rejections
            )
        elapsed = time.perf_counter() - t0
        out[kind] = {
            "messages": job.messages,
            "readings": job.readings,
            "rejected": rejected,
            "messages_per_s": job.messages / elapsed,
            "readings_per_s": job.readings / elapsed,
        }
    return out


def run_writer(bench: Bench) -> dict[str, Any]:
    """Diagnostic: BatchWriter alone (staging COPY, INSERT .. ON CONFLICT, dirty hours),
    pre-parsed 50-reading messages, 5,000 readings per transaction."""
    size = bench.sizes.batch_size
    [job] = bench.jobs("batch", Day.writer, bench.sizes.writer_readings // size, publishers=1)
    now = datetime.now(UTC)
    messages = []
    for k in range(job.messages):
        topic, payload = job.message(k)
        parsed = parse_message(topic, payload, PREFIX, bench.meters, now, Limits())
        messages.append(Message(topic, payload, parsed))
    per_write = max(1, 5000 // size)
    writer = BatchWriter(bench.settings.libpq_url)
    stored = 0
    t0 = time.perf_counter()
    for i in range(0, len(messages), per_write):
        stored += writer.write(messages[i : i + per_write]).stored
    elapsed = time.perf_counter() - t0
    writer.close()
    count = count_day(bench.conn, Day.writer)
    truncate(bench.conn)
    return {
        "readings": job.readings,
        "stored": count,
        "verified": count == job.readings == stored,
        "readings_per_transaction": per_write * size,
        "seconds": elapsed,
        "readings_per_s": job.readings / elapsed,
    }


def run_pipeline(bench: Bench, engine: Engine) -> dict[str, Any]:
    """Diagnostic: the ingestor's Pipeline in this process without MQTT: parse and
    enqueue on this thread, the writer thread commits, then 'acks' (counted)."""
    [job] = bench.jobs("single", Day.pipeline, bench.sizes.single_messages // 3, publishers=1)
    payloads = [job.message(k) for k in range(job.messages)]
    registry = MeterRegistry(engine, [])
    registry.refresh()
    s = Settings()
    acked = [0]
    done = threading.Event()
    done_at = [0.0]

    def ack(tokens: list[object]) -> None:
        acked[0] += len(tokens)
        if acked[0] >= job.messages:
            done_at[0] = time.time()
            done.set()

    pipeline = Pipeline(
        BatchWriter(bench.settings.libpq_url),
        registry,
        PREFIX,
        Limits(s.ingest_max_payload_bytes, timedelta(seconds=s.ingest_max_future_skew_s)),
        BatchPolicy(
            s.ingest_batch_readings, s.ingest_max_inflight, s.ingest_batch_deadline_ms / 1000
        ),
        ack=ack,
    )
    pipeline.start()
    try:
        t0 = time.time()
        for k, (topic, payload) in enumerate(payloads):
            pipeline.submit(topic, payload, k)
        if not done.wait(120):
            raise TimeoutError(f"pipeline acked {acked[0]} of {job.messages}")
    finally:
        pipeline.stop()
    elapsed = done_at[0] - t0
    count = count_day(bench.conn, Day.pipeline)
    truncate(bench.conn)
    return {
        "messages": job.messages,
        "stored": count,
        "verified": count == job.messages,
        "seconds": elapsed,
        "messages_per_s": job.messages / elapsed,
    }


def run_copy(bench: Bench) -> dict[str, Any]:
    """Ceiling B: binary COPY straight into readings, one commit per batch."""
    n, batch = bench.sizes.copy_rows, bench.sizes.copy_batch
    meters = sorted(bench.meters)
    base = day_start_us(Day.copy)
    rows = [(meters[i % len(meters)], us_to_dt(base + i * STEP_US), float(i)) for i in range(n)]
    with db_connect(bench.settings, autocommit=False) as conn:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            with (
                conn.cursor() as cur,
                cur.copy("COPY readings (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text", "timestamptz", "float8"])
                for row in rows[start : start + batch]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - t0
    count = count_day(bench.conn, Day.copy)
    # What a count(*) poll costs at this size (why the ingest runs probe instead).
    lo, hi = day_range(Day.copy)
    timings = []
    for _ in range(3):
        c0 = time.perf_counter()
        scalar(bench.conn, "SELECT count(*) FROM readings WHERE ts >= %s AND ts < %s", (lo, hi))
        timings.append(time.perf_counter() - c0)
    truncate(bench.conn)
    return {
        "rows": n,
        "rows_per_commit": batch,
        "stored": count,
        "verified": count == n,
        "seconds": elapsed,
        "rows_per_s": n / elapsed,
        "count_star_ms": 1000 * sorted(timings)[1],
    }


def run_bare(bench: Bench) -> dict[str, Any]:
    """Ceiling A: publisher process(es) as fast as possible, a counting subscriber here."""
    jobs = bench.jobs("single", Day.bare, bench.sizes.bare_messages)
    expected = sum(j.messages for j in jobs)
    sub = Subscriber(bench.broker, BARE_USER, expected)
    try:
        sub.start()
        with PublisherGroup(jobs) as pubs:
            pubs.go()
            if not sub.done.wait(max(60.0, expected / 2000)):
                raise TimeoutError(f"bare subscriber got {sub.count} of {expected}")
            reports = pubs.results(60)
    finally:
        sub.close()
    return {
        "messages": expected,
        "received": sub.count,
        "seconds": sub.last - sub.first,
        "messages_per_s": expected / (sub.last - sub.first),
        **publish_summary(reports),
    }


def run_bare_drain(bench: Bench) -> dict[str, Any]:
    """Ceiling A on a backlog: the same subscriber catching up on messages queued for
    its session while it was away, with no publisher competing for the CPU."""
    [job] = bench.jobs("single", Day.bare_drain, bench.sizes.drain_messages, publishers=1)
    away = Subscriber(bench.broker, BARE_USER, job.messages)
    away.start()
    away.disconnect()
    back = Subscriber(bench.broker, BARE_USER, job.messages)
    try:
        with PublisherGroup([job]) as pubs:
            pubs.go()
            pubs.results(max(120.0, job.messages / 2000))
        back.start()
        if not back.done.wait(max(60.0, job.messages / 2000)):
            raise TimeoutError(f"bare subscriber got {back.count} of {job.messages}")
    finally:
        back.close()
    return {
        "messages": job.messages,
        "received": back.count,
        "seconds": back.last - back.first,
        "messages_per_s": job.messages / (back.last - back.first),
    }


def publish_summary(reports: Sequence[PublishReport]) -> dict[str, Any]:
    first = min(r.first_publish for r in reports)
    last = max(r.last_publish for r in reports)
    messages = sum(r.messages for r in reports)
    return {
        "publishers": len(reports),
        "publish_messages_per_s": messages / max(last - first, 1e-9),
        "publish_first_to_all_acked_s": max(r.all_acked for r in reports) - first,
    }


def wait_committed(
    bench: Bench, probes: Sequence[tuple[str, datetime]], day: Day, expected: int, timeout: float
) -> tuple[float | None, int, str]:
    """When every published reading is committed: (time, count, how).

    Probe the last reading of each publisher every 20 ms (an index lookup); a
    publisher's messages are delivered in order and the ingestor commits in
    order, so once its last reading is visible all of it should be. That is then
    checked with an exact count(*); if it falls short, count(*) is polled every
    50 ms until it matches or stops moving for 15 s."""
    assert bench.ingestor is not None
    deadline = time.monotonic() + timeout
    seen_at = None
    pending = list(probes)
    while time.monotonic() < deadline:
        pending = [p for p in pending if not exists(bench.conn, *p)]
        if not pending:
            seen_at = time.time()
            break
        bench.ingestor.check()
        time.sleep(0.02)
    count = count_day(bench.conn, day)
    if seen_at is not None and count == expected:
        return seen_at, count, "probe"
    moved = time.monotonic()
    while count != expected and time.monotonic() - moved < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
        now_count = count_day(bench.conn, day)
        if now_count != count:
            count, moved = now_count, time.monotonic()
    return (time.time() if count == expected else None), count, "count"


def run_ingest_throughput(bench: Bench, kind: Literal["single", "batch"]) -> dict[str, Any]:
    assert bench.ingestor is not None
    day = Day.single if kind == "single" else Day.batch
    messages = bench.sizes.single_messages if kind == "single" else bench.sizes.batch_messages
    jobs = bench.jobs(kind, day, messages)
    expected = sum(j.readings for j in jobs)
    before = bench.ingestor.metrics()
    with PublisherGroup(jobs) as pubs, bench.profiler.record(bench.ingestor.pid, kind):
        pubs.go()
        done_at, count, how = wait_committed(
            bench, [j.last_key() for j in jobs], day, expected, timeout=120 + expected / 2000
        )
        reports = pubs.results(60)
    after = bench.ingestor.metrics()
    first = min(r.first_publish for r in reports)
    result: dict[str, Any] = {
        "messages": sum(j.messages for j in jobs),
        "readings": expected,
        "stored": count,
        "verified": count == expected,
        "completion_detected_by": how,
        **publish_summary(reports),
        "ingestor": metrics_delta(before, after),
    }
    if done_at is not None:
        elapsed = done_at - first
        result |= {
            "seconds": elapsed,
            "readings_per_s": expected / elapsed,
            "messages_per_s": result["messages"] / elapsed,
        }
    truncate(bench.conn)
    return result


class VisibilityObserver(threading.Thread):
    """Every `interval` s: the newest committed ts among the run's meters (an index
    lookup per meter), with the wall-clock time the answer came back."""

    SQL = """
        SELECT max(v.ts) FROM unnest(%s::text[]) AS m(id)
        CROSS JOIN LATERAL (
            SELECT r.ts FROM readings r
            WHERE r.meter_id = m.id AND r.ts >= %s AND r.ts < %s
            ORDER BY r.ts DESC LIMIT 1
        ) v
    """

    def __init__(
        self, settings: Settings, meters: list[str], day: Day, target: datetime, interval: float
    ) -> None:
        super().__init__(name="visibility-observer", daemon=True)
        self.settings = settings
        self.meters = meters
        self.range = day_range(day)
        self.target = target.timestamp()
        self.interval = interval
        self.times: list[float] = []
        self.newest: list[float] = []
        self.query_s: list[float] = []
        self.reached = threading.Event()
        self.error = ""
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            with db_connect(self.settings) as conn:
                params = (self.meters, *self.range)
                while not self._stop_event.is_set():
                    t0 = time.time()
                    row = conn.execute(self.SQL, params, prepare=True).fetchone()
                    t1 = time.time()
                    newest = row[0].timestamp() if row and row[0] is not None else -math.inf
                    self.times.append(t1)
                    self.newest.append(newest)
                    self.query_s.append(t1 - t0)
                    if newest >= self.target - 1e-7:
                        self.reached.set()
                    self._stop_event.wait(max(0.0, self.interval - (time.time() - t0)))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.reached.set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def run_latency(bench: Bench, kind: Literal["single", "batch"]) -> dict[str, Any]:
    """Publish-to-commit latency at a fixed offered rate (see bench/README.md)."""
    assert bench.ingestor is not None
    day = Day.latency_single if kind == "single" else Day.latency_batch
    per_message = 1 if kind == "single" else bench.sizes.batch_size
    msg_rate = bench.sizes.latency_readings_per_s / per_message
    messages = int(msg_rate * bench.sizes.latency_seconds)
    [job] = bench.jobs(kind, day, messages, publishers=1, rate=msg_rate, stamp_values=True)
    meters = [m for m, _ in job.meters]
    interval = 0.01
    observer = VisibilityObserver(bench.settings, meters, day, job.last_key()[1], interval)
    before = bench.ingestor.metrics()
    with PublisherGroup([job]) as pubs:
        observer.start()
        pubs.go()
        [report] = pubs.results(bench.sizes.latency_seconds + 120)
        reached = observer.reached.wait(60)
        observer.stop()
    after = bench.ingestor.metrics()
    if observer.error:
        raise RuntimeError(f"observer: {observer.error}")
    lo, hi = day_range(day)
    rows = bench.conn.execute(
        "SELECT ts, value, received_at FROM readings "
        "WHERE meter_id = ANY(%s) AND ts >= %s AND ts < %s ORDER BY ts",
        (meters, lo, hi),
    ).fetchall()
    running: list[float] = []
    for newest in observer.newest:
        running.append(max(newest, running[-1]) if running else newest)
    upper, lower = [], []
    inversions = 0
    unseen = 0
    prev_received = -math.inf
    for ts, published, received_at in rows:
        i = bisect.bisect_left(running, ts.timestamp() - 1e-7)
        if i < len(running):
            upper.append(observer.times[i] - published)
        else:
            unseen += 1
        received = received_at.timestamp()
        lower.append(received - published)
        inversions += received < prev_received
        prev_received = received
    upper.sort()
    lower.sort()
    query_ms = sorted(1000 * q for q in observer.query_s)
    return {
        "kind": kind,
        "offered_readings_per_s": bench.sizes.latency_readings_per_s,
        "offered_messages_per_s": msg_rate,
        "readings_per_message": per_message,
        "seconds": bench.sizes.latency_seconds,
        "published_readings_per_s": report.readings
        / max(report.last_publish - report.first_publish, 1e-9),
        "max_publisher_lag_ms": 1000 * report.max_lag_s,
        "readings": job.readings,
        "stored": len(rows),
        "verified": len(rows) == job.readings and reached,
        "p50_ms": 1000 * pct(upper, 0.50),
        "p90_ms": 1000 * pct(upper, 0.90),
        "p99_ms": 1000 * pct(upper, 0.99),
        "max_ms": 1000 * pct(upper, 1.0),
        "txn_start_p50_ms": 1000 * pct(lower, 0.50),
        "txn_start_p99_ms": 1000 * pct(lower, 0.99),
        "not_seen_by_observer": unseen,
        "commits_in_publish_order": inversions == 0,
        "poll_interval_ms": 1000 * interval,
        "poll_query_ms_p50": pct(query_ms, 0.5),
        "poll_query_ms_p99": pct(query_ms, 0.99),
        "ingestor": metrics_delta(before, after),
    }


def run_ingest_drain(bench: Bench) -> dict[str, Any]:
    """The ingestor catching up on single-reading messages queued at the broker for its
    persistent session while it was stopped: its own ceiling, with no publisher
    competing for the CPU. The rate runs from the first commit seen to the last."""
    ingestor = bench.ingestor
    assert ingestor is not None
    [job] = bench.jobs("single", Day.drain, bench.sizes.drain_messages, publishers=1)
    meters = [m for m, _ in job.meters]
    ingestor.stop()
    try:
        with PublisherGroup([job]) as pubs:
            pubs.go()
            pubs.results(max(120.0, job.messages / 2000))
    except BaseException:
        ingestor.start()  # the runs after this one need it
        raise
    observer = VisibilityObserver(bench.settings, meters, Day.drain, job.last_key()[1], 0.02)
    observer.start()
    started = time.time()
    ingestor.start()
    deadline = time.monotonic() + 120 + job.readings / 2000
    try:
        with bench.profiler.record(ingestor.pid, "drain", settle=0.0):
            while not observer.reached.wait(0.5) and time.monotonic() < deadline:
                ingestor.check()
    finally:
        observer.stop()
    ingestor.wait_healthy()
    if observer.error:
        raise RuntimeError(f"observer: {observer.error}")
    count = count_day(bench.conn, Day.drain)
    truncate(bench.conn)
    result: dict[str, Any] = {
        "messages": job.messages,
        "readings": job.readings,
        "stored": count,
        "verified": count == job.readings and observer.reached.is_set(),
        "ingestor": metrics_delta({}, ingestor.metrics()),
    }
    seen = [(t, n) for t, n in zip(observer.times, observer.newest, strict=True) if n > -math.inf]
    target = job.last_key()[1].timestamp()
    done = [t for t, n in seen if n >= target - 1e-7]
    if seen and done:
        t_first, newest = seen[0]
        committed_first = round((newest * 1e6 - job.base_us) / STEP_US) + 1  # in order
        elapsed = done[0] - t_first
        result |= {
            "seconds": elapsed,
            "messages_per_s": (job.messages - committed_first) / elapsed,
            "readings_per_s": (job.readings - committed_first) / elapsed,
            "start_to_first_commit_s": t_first - started,
            "messages_per_s_from_start": job.messages / (done[0] - started),
        }
    return result


def run_naive(bench: Bench) -> dict[str, Any]:
    """Baseline: a paho callback doing one autocommit INSERT per reading."""
    jobs = bench.jobs("single", Day.naive, bench.sizes.naive_readings)
    expected = sum(j.readings for j in jobs)
    sub = Subscriber(bench.broker, NAIVE_USER, expected, conninfo=bench.settings.libpq_url)
    try:
        sub.start()
        with PublisherGroup(jobs) as pubs:
            pubs.go()
            if not sub.done.wait(max(120.0, expected / 200)):
                raise TimeoutError(f"naive stored {sub.count} of {expected}: {sub.errors[:3]}")
            reports = pubs.results(60)
    finally:
        sub.close()
    count = count_day(bench.conn, Day.naive)
    first = min(r.first_publish for r in reports)
    truncate(bench.conn)
    return {
        "readings": expected,
        "stored": count,
        "verified": count == expected and not sub.errors,
        "seconds": sub.last - first,
        "readings_per_s": expected / (sub.last - first),
        **publish_summary(reports),
    }


def warm_up(bench: Bench, timeout: float = 60.0) -> float:
    """Until the ingestor has subscribed, published messages are dropped (no session
    yet): publish one reading every 0.3 s until it is stored. Returns seconds taken."""
    assert bench.ingestor is not None
    gw = bench.single_gateways()[-1]
    meter, unit = gw.meters[0]
    us = day_start_us(Day.warmup)
    ts = us_to_dt(us).astimezone(SITE_TZ).isoformat(timespec="milliseconds")
    payload = f'{{"ts": "{ts}", "value": 1.0, "unit": "{unit}"}}'
    client, _ = mqtt_connect(bench.broker.port, gw.id, bench.broker.password(gw.id))
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            bench.ingestor.check()
            client.publish(f"{PREFIX}/{gw.site}/meters/{meter}", payload, qos=1)
            time.sleep(0.3)
            if exists(bench.conn, meter, us_to_dt(us)):
                return time.monotonic() - t0
    finally:
        mqtt_close(client)
    raise TimeoutError(
        f"warm-up reading not stored after {timeout} s:\n{bench.ingestor.log_tail()}"
    )


# --- orchestration and report -----------------------------------------------------------


def environment(settings: Settings) -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    def run(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return "?"
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if done.stdout or done.stderr
            else "?"
        )

    with db_connect(settings) as conn:
        server = str(scalar(conn, "SHOW server_version"))
        tsdb = str(scalar(conn, "SELECT extversion FROM pg_extension WHERE extname='timescaledb'"))
        sync = str(scalar(conn, "SHOW synchronous_commit"))
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.splitlines()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "paho_mqtt": version("paho-mqtt"),
        "psycopg": version("psycopg"),
        "postgresql": server,
        "timescaledb": tsdb,
        "synchronous_commit": sync,
        "mosquitto": run(["mosquitto", "-h"]),
        "git_commit": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "git_changed_files": [line[3:] for line in changed],
    }


def ingest_settings() -> dict[str, Any]:
    s = Settings()
    return {
        "ingest_batch_readings": s.ingest_batch_readings,
        "ingest_batch_deadline_ms": s.ingest_batch_deadline_ms,
        "ingest_max_inflight": s.ingest_max_inflight,
        "mqtt_protocol": s.mqtt_protocol,
        "broker_limits": asdict(BrokerLimits()),
    }


def service_env(settings: Settings, broker: Broker, user: str) -> dict[str, str]:
    """Environment of a service subprocess on the bench database and broker as `user`."""
    s = settings
    return {
        **os.environ,
        "EMISSIONS_DB_HOST": s.db_host,
        "EMISSIONS_DB_PORT": str(s.db_port),
        "EMISSIONS_DB_USER": s.db_user,
        "EMISSIONS_DB_NAME": s.db_name,
        "EMISSIONS_DB_PASSWORD": s.db_password.get_secret_value() if s.db_password else "",
        "EMISSIONS_MQTT_HOST": "127.0.0.1",
        "EMISSIONS_MQTT_PORT": str(broker.port),
        "EMISSIONS_MQTT_USERNAME": user,
        "EMISSIONS_MQTT_PASSWORD": broker.password(user),
        "EMISSIONS_STATE_DIR": str(broker.state_dir),
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }


def start_ingestor(bench: Bench, cmd: list[str]) -> Ingestor:
    health_port = free_port()
    env = {
        **service_env(bench.settings, bench.broker, INGEST_USER),
        "EMISSIONS_INGEST_HEALTH_PORT": str(health_port),
    }
    ingestor = Ingestor(cmd, env, health_port, bench.workdir)
    ingestor.start()
    ingestor.wait_healthy()
    return ingestor


Step = tuple[str, Callable[[], dict[str, Any]]]


INGEST_STEPS = ("ingest_single", "ingest_drain", "ingest_batch", "latency_batch", "latency_single")
ALL_STEPS = (
    "parse",
    "adapters",
    "writer",
    "pipeline",
    "copy",
    "bare_subscriber",
    "bare_drain",
    *INGEST_STEPS,
    "naive",
)


def run_steps(steps: Sequence[Step], figures: dict[str, Any], only: set[str]) -> None:
    for name, fn in steps:
        if name not in only:
            continue
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {name} ...", end=" ")
        t0 = time.monotonic()
        try:
            figures[name] = fn()
        except IngestorDiedError:
            raise
        except Exception as exc:
            figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
            console.print(f"[red]failed[/red]: {figures[name]['error']}")
            continue
        console.print(f"[green]done[/green] in {time.monotonic() - t0:.1f} s")


def ratios(figures: dict[str, Any]) -> dict[str, Any]:
    def get(run: str, key: str) -> float | None:
        value = figures.get(run, {}).get(key)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    single = get("ingest_single", "messages_per_s")
    single_r = get("ingest_single", "readings_per_s")
    batch = get("ingest_batch", "readings_per_s")
    naive = get("naive", "readings_per_s")
    return {
        "ingest_single_vs_bare_subscriber": div(single, get("bare_subscriber", "messages_per_s")),
        "ingest_drain_vs_bare_drain": div(
            get("ingest_drain", "messages_per_s"), get("bare_drain", "messages_per_s")
        ),
        "ingest_batch_readings_per_s": batch,
        "latency_batch_p99_ms": get("latency_batch", "p99_ms"),
        "latency_single_p99_ms": get("latency_single", "p99_ms"),
        "speedup_single_vs_naive": div(single_r, naive),
        "speedup_batch_vs_naive": div(batch, naive),
        "ingest_batch_vs_copy": div(batch, get("copy", "rows_per_s")),
        "writer_vs_copy": div(get("writer", "readings_per_s"), get("copy", "rows_per_s")),
    }


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def ok(flag: object) -> str:
    return "[green]exact[/green]" if flag else "[red]MISMATCH[/red]"


def report_table(figures: dict[str, Any]) -> Table:
    table = Table(title="Ingest benchmark", show_lines=False)
    table.add_column("#")
    table.add_column("Measure")
    table.add_column("Figure", justify="right")
    table.add_column("Detail")

    def row(
        num: str, name: str, key: str, render: Callable[[dict[str, Any]], tuple[str, str]]
    ) -> None:
        f = figures.get(key)
        if f is None:
            return
        if "error" in f:
            table.add_row(num, name, "[red]failed[/red]", f["error"][:120])
            return
        table.add_row(num, name, *render(f))

    row(
        "A",
        "Ceiling A: bare paho subscriber",
        "bare_subscriber",
        lambda f: (
            fmt(f["messages_per_s"], " msg/s"),
            f"{f['messages']:,} msgs; publisher sent {fmt(f['publish_messages_per_s'])} msg/s",
        ),
    )
    row(
        "A",
        "Ceiling A on a backlog (no publisher)",
        "bare_drain",
        lambda f: (fmt(f["messages_per_s"], " msg/s"), f"{f['messages']:,} queued msgs"),
    )
    row(
        "B",
        "Ceiling B: binary COPY into readings",
        "copy",
        lambda f: (
            fmt(f["rows_per_s"], " rows/s"),
            f"{f['rows']:,} rows, commit per {f['rows_per_commit']:,}; {ok(f['verified'])}",
        ),
    )
    for key, label in (
        ("ingest_single", "single-reading msgs"),
        ("ingest_batch", "50-reading batches"),
    ):
        row(
            "3",
            f"Ingestor, {label}",
            key,
            lambda f: (
                fmt(f.get("readings_per_s"), " readings/s"),
                f"{f['messages']:,} msgs ({fmt(f.get('messages_per_s'))} msg/s), "
                f"{f['stored']:,}/{f['readings']:,} stored {ok(f['verified'])}; "
                f"mean batch {fmt(f['ingestor'].get('mean_batch_readings'))} readings, "
                f"commit {fmt(f['ingestor'].get('mean_commit_ms'), ' ms', 1)}",
            ),
        )
    row(
        "3",
        "Ingestor on a backlog, single-reading msgs",
        "ingest_drain",
        lambda f: (
            fmt(f.get("messages_per_s"), " msg/s"),
            f"{f['stored']:,}/{f['readings']:,} stored {ok(f['verified'])}; first commit "
            f"{fmt(f.get('start_to_first_commit_s'), ' s', 1)} after start; mean batch "
            f"{fmt(f['ingestor'].get('mean_batch_readings'))}, "
            f"commit {fmt(f['ingestor'].get('mean_commit_ms'), ' ms', 1)}",
        ),
    )
    row("3", "Ingestor", "ingestor", lambda f: ("", ""))
    for key, label in (
        ("latency_batch", "50-reading batches"),
        ("latency_single", "single readings"),
    ):
        row(
            "4",
            f"Latency at 5,000 readings/s, {label}",
            key,
            lambda f: (
                f"p50 {fmt(f['p50_ms'], ' ms')} / p99 {fmt(f['p99_ms'], ' ms')}",
                f"max {fmt(f['max_ms'], ' ms')}; txn-start bound p50/p99 "
                f"{fmt(f['txn_start_p50_ms'])}/{fmt(f['txn_start_p99_ms'], ' ms')}; "
                f"{f['stored']:,}/{f['readings']:,} {ok(f['verified'])}"
                + ("" if f["commits_in_publish_order"] else " [red]out of order[/red]"),
            ),
        )
    row(
        "5",
        "Naive: INSERT per reading, autocommit",
        "naive",
        lambda f: (
            fmt(f["readings_per_s"], " readings/s"),
            f"{f['stored']:,}/{f['readings']:,} stored {ok(f['verified'])}",
        ),
    )
    row(
        "d",
        "Diagnostic: parser alone",
        "parse",
        lambda f: (
            fmt(f["single"]["messages_per_s"], " msg/s"),
            f"batches: {fmt(f['batch']['readings_per_s'])} readings/s",
        ),
    )
    for protocol, f in sorted(figures.get("adapters", {}).items()):
        if isinstance(f, dict) and "messages_per_s" in f:
            table.add_row(
                "d",
                f"Diagnostic: {protocol} adapter",
                fmt(f["messages_per_s"], " msg/s"),
                f"{f['messages']:,} msgs, in process; {f['rejected']} rejected",
            )
    row(
        "d",
        "Diagnostic: BatchWriter alone",
        "writer",
        lambda f: (
            fmt(f["readings_per_s"], " readings/s"),
            f"{f['readings']:,} readings, {f['readings_per_transaction']:,} per txn; "
            f"{ok(f['verified'])}",
        ),
    )
    row(
        "d",
        "Diagnostic: Pipeline without MQTT",
        "pipeline",
        lambda f: (
            fmt(f["messages_per_s"], " msg/s"),
            f"{f['messages']:,} single-reading msgs; {ok(f['verified'])}",
        ),
    )
    return table


def goals_table(r: dict[str, Any]) -> Table:
    table = Table(title="Ratios and goals")
    table.add_column("Measure")
    table.add_column("Goal", justify="right")
    table.add_column("Measured", justify="right")
    table.add_column("")

    def verdict(value: float | None, good: Callable[[float], bool]) -> str:
        if value is None:
            return "[yellow]n/a[/yellow]"
        return "[green]PASS[/green]" if good(value) else "[red]FAIL[/red]"

    for key, label in (
        ("ingest_single_vs_bare_subscriber", "live, publisher running"),
        ("ingest_drain_vs_bare_drain", "draining a backlog"),
    ):
        value = r[key]
        table.add_row(
            f"Ingestor single-reading rate / bare subscriber ({label})",
            ">= 50 %",
            fmt(None if value is None else 100 * value, " %", 1),
            verdict(value, lambda v: v >= GOALS["single_vs_bare"]),
        )
    batch = r["ingest_batch_readings_per_s"]
    table.add_row(
        "Ingestor, 50-reading batches",
        ">= 100,000 readings/s",
        fmt(batch, " readings/s"),
        verdict(batch, lambda v: v >= GOALS["batch_readings_per_s"]),
    )
    for key, label in (("latency_batch_p99_ms", "batches"), ("latency_single_p99_ms", "single")):
        table.add_row(
            f"p99 publish-to-commit at 5,000 readings/s ({label})",
            "<= 500 ms",
            fmt(r[key], " ms"),
            verdict(r[key], lambda v: v <= GOALS["p99_ms"]),
        )
    for key, label in (
        ("speedup_single_vs_naive", "Speed-up vs naive (single-reading msgs)"),
        ("speedup_batch_vs_naive", "Speed-up vs naive (50-reading batches)"),
        ("ingest_batch_vs_copy", "Ingestor batches / COPY ceiling"),
        ("writer_vs_copy", "BatchWriter alone / COPY ceiling"),
    ):
        unit = " x" if key.startswith("speedup") else ""
        table.add_row(label, "", fmt(r[key], unit, 2 if not unit else 1), "")
    return table


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument(
        "--ingest-cmd",
        default=f"{Path(sys.executable).parent / 'emissions'} ingest",
        help="command that runs the ingestor (default: the venv's `emissions ingest`)",
    )
    parser.add_argument(
        "--publishers", type=int, default=1, help="publisher processes per throughput run"
    )
    parser.add_argument("--py-spy", metavar="PATH", help="record the ingestor with this py-spy")
    parser.add_argument(
        "--py-spy-format", choices=["flamegraph", "speedscope", "raw"], default="flamegraph"
    )
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="sample only the thread holding the GIL"
    )
    parser.add_argument(
        "--only", metavar="STEPS", help=f"comma-separated subset of: {', '.join(ALL_STEPS)}"
    )
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def run_all(
    args: argparse.Namespace, sizes: Sizes, stamp: str, stack: contextlib.ExitStack
) -> dict[str, Any]:
    """Set everything up (each piece registers its clean-up on `stack`) and run."""
    only = set(args.only.split(",")) if args.only else set(ALL_STEPS)
    if unknown := only - set(ALL_STEPS):
        raise SystemExit(f"--only: unknown step(s) {sorted(unknown)}; steps: {ALL_STEPS}")
    figures: dict[str, Any] = {}
    results: dict[str, Any] = {
        "benchmark": "ingest",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "settings": ingest_settings(),
        "figures": figures,
    }
    started = time.monotonic()
    # The canonical paths are what this measures; device payloads: the `adapters` step.
    demo_park = load_park(ROOT / "config" / "park.yaml")
    park = canonical_park(demo_park)
    base = Path(tempfile.mkdtemp(prefix="emissions-bench-"))
    stack.callback(shutil.rmtree, base, ignore_errors=True)
    os.chmod(base, 0o755)  # a broker started as root drops to `mosquitto`  # noqa: S103
    settings = create_database(park, stack)
    broker = start_broker(park, base, stack)
    conn = db_connect(settings)
    stack.callback(conn.close)
    engine = create_engine(settings.database_url)
    stack.callback(engine.dispose)
    results["environment"] = environment(settings)
    profiler = Profiler(args.py_spy, args.py_spy_format, args.results_dir, stamp, args.py_spy_gil)
    bench = Bench(
        sizes, settings, broker, park_gateways(park), base, conn, profiler, args.publishers
    )
    bench.meters = MeterRegistry(engine, []).refresh()
    console.print(
        f"[dim]database {settings.db_name}, broker on port {broker.port}, "
        f"{len(bench.meters)} meters[/dim]"
    )
    run_steps(
        [
            ("parse", lambda: run_parse(bench)),
            ("adapters", lambda: run_adapters(demo_park, sizes.parse_messages, BASE)),
            ("writer", lambda: run_writer(bench)),
            ("pipeline", lambda: run_pipeline(bench, engine)),
            ("copy", lambda: run_copy(bench)),
            ("bare_subscriber", lambda: run_bare(bench)),
            ("bare_drain", lambda: run_bare_drain(bench)),
        ],
        figures,
        only,
    )
    try:
        if not only & set(INGEST_STEPS):
            raise LookupError
        bench.ingestor = start_ingestor(bench, shlex.split(args.ingest_cmd))
        stack.callback(bench.ingestor.stop)
        results["warm_up_s"] = warm_up(bench)
        run_steps(
            [
                ("ingest_single", lambda: run_ingest_throughput(bench, "single")),
                ("ingest_drain", lambda: run_ingest_drain(bench)),
                ("ingest_batch", lambda: run_ingest_throughput(bench, "batch")),
                ("latency_batch", lambda: run_latency(bench, "batch")),
                ("latency_single", lambda: run_latency(bench, "single")),
            ],
            figures,
            only,
        )
    except LookupError:
        pass  # no ingestor run selected
    except (IngestorDiedError, TimeoutError, RuntimeError) as exc:
        figures["ingestor"] = {"error": str(exc)}
        console.print(f"[red]ingestor runs aborted[/red]: {exc}")
    if bench.ingestor is not None:
        bench.ingestor.stop()
        wipe_session(broker, INGEST_USER)
    run_steps([("naive", lambda: run_naive(bench))], figures, only)
    results["ratios"] = ratios(figures)
    results["total_seconds"] = time.monotonic() - started
    if profiler.files:
        results["profiles"] = profiler.files
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    configure_logging("WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]Ingest benchmark[/bold] ({'quick' if args.quick else 'full'})")
    stack = contextlib.ExitStack()
    try:
        results = run_all(args, sizes, stamp, stack)
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: cleaned up[/yellow]")
        return 130
    finally:
        # Clean-up must not be cut short by a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    figures = results["figures"]
    console.print(report_table(figures))
    console.print(goals_table(results["ratios"]))
    path = args.results_dir / f"ingest-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"Results: {path} (total {results['total_seconds']:.0f} s)")
    failed = [k for k, v in figures.items() if "error" in v or v.get("verified") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
