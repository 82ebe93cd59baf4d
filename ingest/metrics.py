"""Ingest metrics, named per the Prometheus guide (base units, `_total` counters).

Labels are bounded sets (result, reason); never meter ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter(
    "emissions_ingest_readings_total",
    "Readings by outcome: stored, duplicate (same value again), conflict, quarantined.",
    ["result"],
)
QUARANTINED = Counter(
    "emissions_ingest_quarantined_total",
    "Readings or messages kept out, by reason.",
    ["reason"],
)
MESSAGES = Counter("emissions_ingest_messages_total", "MQTT messages received.")
BATCH_READINGS = Histogram(
    "emissions_ingest_batch_readings",
    "Readings per committed batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000),
)
COMMIT_SECONDS = Histogram(
    "emissions_ingest_commit_duration_seconds",
    "Time to write and commit one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AWAITING_ACK = Gauge(
    "emissions_ingest_messages_awaiting_ack",
    "Messages received and waiting for their batch to commit (sampled at each commit).",
)
LAST_COMMIT = Gauge(
    "emissions_ingest_last_commit_timestamp_seconds",
    "Unix time of the last committed batch (alert on time() minus this).",
)
DB_ERRORS = Counter(
    "emissions_ingest_database_errors_total", "Failed batch writes (retried, never acked)."
)
QUARANTINE_DROPPED = Counter(
    "emissions_ingest_quarantine_dropped_total",
    "Quarantine rows not stored (over a topic's rate limit), by reason; counted in "
    "the quarantine_drops table per source and hour.",
    ["reason"],
)
QUARANTINE_TRUNCATED = Counter(
    "emissions_ingest_quarantine_payloads_truncated_total",
    "Quarantined payloads stored cut at the cap (full size and SHA-256 kept).",
)
QUARANTINE_PRUNED = Counter(
    "emissions_ingest_quarantine_pruned_total",
    "Quarantine rows deleted by the retention period.",
)
QUARANTINE_LAST_PRUNE = Gauge(
    "emissions_ingest_quarantine_last_prune_timestamp_seconds",
    "Unix time the quarantine retention last ran.",
)
