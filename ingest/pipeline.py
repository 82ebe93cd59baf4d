"""Batching between the MQTT thread and the single writer thread.

The MQTT thread parses and puts in the inbox; the writer takes a batch (up to a
size in readings, the in-flight window in messages, or a deadline: ingest/inbox.py),
writes it in one transaction and only then acknowledges its messages. A database
error acks nothing: the same batch is retried with backoff until it commits. The
inbox is bounded, so a slow database stops the MQTT thread reading and the broker
holds the backlog.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from core.logs import get_logger
from ingest import metrics
from ingest.devices import parse_any
from ingest.inbox import BatchPolicy, Inbox
from ingest.meters import MeterRegistry
from ingest.parse import Limits, Parsed, Reason, Rejection
from ingest.positions import Committed
from ingest.writer import BatchResult, BatchWriter, Message

__all__ = ["BatchPolicy", "Pipeline"]

log = get_logger("ingest")


class Pipeline:
    def __init__(
        self,
        writer: BatchWriter,
        registry: MeterRegistry,
        prefix: str,
        limits: Limits,
        policy: BatchPolicy,
        ack: Callable[[list[object]], None],
        refresh_s: float = 30.0,
        publish_committed: Callable[[Committed], None] | None = None,
    ) -> None:
        self._writer = writer
        self._registry = registry
        self._prefix = prefix
        self._limits = limits
        self._ack = ack
        self._publish_committed = publish_committed
        self._refresh_s = refresh_s
        self._inbox = Inbox(policy)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self.last_loop = time.monotonic()

    # --- MQTT thread -------------------------------------------------------------
    def submit(self, topic: str, payload: bytes, ack: object) -> None:
        """Parse and hand over; blocks when the writer is behind (back-pressure)."""
        self._inbox.put(
            Message(topic, payload, self._parse(topic, payload, datetime.now(UTC)), ack)
        )

    def _parse(self, topic: str, payload: bytes, now: datetime) -> Parsed:
        registry = self._registry
        return parse_any(
            topic, payload, self._prefix, registry.meters, registry.routes, now, self._limits
        )

    # --- writer thread -----------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (commit and ack), then stop."""
        self._stop.set()
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive() and time.monotonic() - self.last_loop < 60

    def _run(self) -> None:
        while not self._stop.is_set() or not self._inbox.empty():
            self.last_loop = time.monotonic()
            if self._registry.age_s() > self._refresh_s:
                self._refresh_registry()
            batch = self._inbox.take()
            if batch:
                self._commit(batch)
            self._prune_quarantine()
        self._writer.close()

    def _commit(self, batch: list[Message]) -> None:
        batch = self._reparse_unknown_meters(batch)
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                result = self._writer.write(batch)
                break
            except psycopg.OperationalError as exc:
                attempt += 1
                metrics.DB_ERRORS.inc()
                delay = min(0.1 * 2**attempt, 5.0)
                log.warning(
                    "batch_write_failed",
                    error=str(exc).strip()[:200],
                    messages=len(batch),
                    attempt=attempt,
                    retry_in_s=delay,
                )
                self._writer.close()
                time.sleep(delay)
            except psycopg.Error as exc:
                # Not the connection: something in the batch itself. Store message by
                # message so one bad message cannot hold back (or lose) the others.
                metrics.DB_ERRORS.inc()
                log.error(
                    "batch_rejected_by_store", error=str(exc).strip()[:200], messages=len(batch)
                )
                result = self._commit_one_by_one(batch)
                break
        elapsed = time.perf_counter() - started
        self._ack([message.ack for message in batch])
        if self._publish_committed is not None:
            for position in result.committed:
                self._publish_committed(position)
        self._observe(result, len(batch), elapsed)

    def _commit_one_by_one(self, batch: list[Message]) -> BatchResult:
        total = BatchResult()
        for message in batch:
            try:
                result = self._writer.write([message])
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                failed = Parsed(
                    message.parsed.site_id,
                    rejections=[Rejection(Reason.store_error, str(exc).strip()[:500])],
                    position=message.parsed.position,
                )
                result = self._writer.write([Message(message.topic, message.payload, failed)])
            total.stored += result.stored
            total.duplicates += result.duplicates
            total.conflicts += result.conflicts
            total.quarantined.update(result.quarantined)
            total.dropped.update(result.dropped)
            total.truncated += result.truncated
            total.committed += result.committed
        return total

    def _reparse_unknown_meters(self, batch: list[Message]) -> list[Message]:
        """A meter applied seconds ago is not in the registry yet: look again before
        quarantining its readings as unknown (at most once a second)."""
        unknown = any(
            r.reason in (Reason.unknown_meter, Reason.unknown_device)
            for m in batch
            for r in m.parsed.rejections
        )
        if not unknown or self._registry.age_s() < 1.0:
            return batch
        self._refresh_registry()
        now = datetime.now(UTC)
        return [
            Message(m.topic, m.payload, self._parse(m.topic, m.payload, now), m.ack)
            if m.parsed.rejections
            else m
            for m in batch
        ]

    def _prune_quarantine(self) -> None:
        """The quarantine retention (ingest/quarantine.py), hourly on this thread; a
        store outage skips it until the next hour (the batches retry on their own)."""
        try:
            pruned = self._writer.prune_if_due()
        except psycopg.OperationalError as exc:
            log.warning("quarantine_prune_failed", error=str(exc).strip()[:200])
            return
        if pruned is not None:
            metrics.QUARANTINE_PRUNED.inc(pruned[0])
            metrics.QUARANTINE_LAST_PRUNE.set(time.time())

    def _refresh_registry(self) -> None:
        try:
            self._registry.refresh()
        except Exception as exc:
            log.warning("meter_registry_refresh_failed", error=str(exc).strip()[:200])

    def _observe(self, result: BatchResult, messages: int, elapsed: float) -> None:
        # Counted per batch, not per message: the MQTT thread's hot path stays lock-free.
        metrics.MESSAGES.inc(messages)
        metrics.AWAITING_ACK.set(self._inbox.size())
        metrics.READINGS.labels("stored").inc(result.stored)
        metrics.READINGS.labels("duplicate").inc(result.duplicates)
        metrics.READINGS.labels("conflict").inc(result.conflicts)
        quarantined = sum(result.quarantined.values())
        metrics.READINGS.labels("quarantined").inc(quarantined)
        for reason, count in result.quarantined.items():
            metrics.QUARANTINED.labels(reason).inc(count)
        for reason, count in result.dropped.items():
            metrics.QUARANTINE_DROPPED.labels(reason).inc(count)
        metrics.QUARANTINE_TRUNCATED.inc(result.truncated)
        metrics.BATCH_READINGS.observe(result.readings)
        metrics.COMMIT_SECONDS.observe(elapsed)
        metrics.LAST_COMMIT.set(time.time())
        log.info(
            "batch_committed",
            messages=messages,
            stored=result.stored,
            duplicates=result.duplicates,
            conflicts=result.conflicts,
            quarantined=quarantined,
            commit_ms=round(elapsed * 1000, 1),
        )
