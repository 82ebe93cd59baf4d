"""SQL of the quarantine list: newest first, keyset-paginated by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text


def list_quarantine(
    conn: Connection, site: str | None, before: int | None, limit: int, state: str = "all"
) -> list[dict[str, Any]]:
    """`state`: all, open (not replayed) or replayed."""
    rows = conn.execute(
        text(
            "SELECT id, received_at, topic, site_id AS site, meter_id AS meter, reason, detail, "
            "payload, payload_bytes, payload_sha256, replayed_at, replay_result FROM quarantine "
            "WHERE (CAST(:s AS text) IS NULL OR site_id = :s) "
            "AND (CAST(:before AS bigint) IS NULL OR id < :before) "
            "AND (CAST(:state AS text) = 'all' OR (replayed_at IS NULL) = (:state = 'open')) "
            "ORDER BY id DESC LIMIT :n"
        ),
        {"s": site, "before": before, "n": limit, "state": state},
    )
    items = []
    for r in rows:
        item = dict(r._mapping)
        raw = bytes(item.pop("payload"))
        item["payload"] = raw.decode("utf-8", errors="replace")
        full = item["payload_bytes"]
        item["payload_truncated"] = full is not None and full > len(raw)
        item["payload_bytes"] = len(raw) if full is None else full
        item["payload_sha256"] = bytes(item["payload_sha256"]).hex()
        items.append(item)
    return items


def list_drops(conn: Connection, site: str | None, limit: int) -> list[dict[str, Any]]:
    """What the quarantine rate limit did not store, per source, reason and hour."""
    rows = conn.execute(
        text(
            "SELECT source, site_id AS site, reason, hour, dropped, first_at, last_at "
            "FROM quarantine_drops WHERE CAST(:s AS text) IS NULL OR site_id = :s "
            "ORDER BY hour DESC, source, reason LIMIT :n"
        ),
        {"s": site, "n": limit},
    )
    return [dict(r._mapping) for r in rows]
