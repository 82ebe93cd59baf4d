"""Ceiling A (a bare paho subscriber, live and on a backlog) and the naive baseline
(one autocommit INSERT per reading): what bench.ingest compares the ingestor with."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from bench.ingest.plan import BARE_USER, DATA_FILTERS, NAIVE_USER, Bench, Day, count_day, truncate
from bench.publishers.jobs import PublishJob
from bench.publishers.process import PublisherGroup, PublishReport
from bench.stack.broker import Broker, mqtt_close, mqtt_connect, wipe_session


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


def publish_to(
    sub: Subscriber, jobs: Sequence[PublishJob], timeout: float, what: str
) -> list[PublishReport]:
    """Publish `jobs` while `sub` receives, until it has them all (or `timeout`)."""
    try:
        sub.start()
        with PublisherGroup(jobs) as pubs:
            pubs.go()
            if not sub.done.wait(timeout):
                raise TimeoutError(f"{what} {sub.count} of {sub.expected}: {sub.errors[:3]}")
            return pubs.results(60)
    finally:
        sub.close()


def run_bare(bench: Bench) -> dict[str, Any]:
    """Ceiling A: publisher process(es) as fast as possible, a counting subscriber here."""
    jobs = bench.jobs("single", Day.bare, bench.sizes.bare_messages)
    expected = sum(j.messages for j in jobs)
    sub = Subscriber(bench.broker, BARE_USER, expected)
    reports = publish_to(sub, jobs, max(60.0, expected / 2000), "bare subscriber got")
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


def run_naive(bench: Bench) -> dict[str, Any]:
    """Baseline: a paho callback doing one autocommit INSERT per reading."""
    jobs = bench.jobs("single", Day.naive, bench.sizes.naive_readings)
    expected = sum(j.readings for j in jobs)
    sub = Subscriber(bench.broker, NAIVE_USER, expected, conninfo=bench.settings.libpq_url)
    reports = publish_to(sub, jobs, max(120.0, expected / 200), "naive stored")
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
