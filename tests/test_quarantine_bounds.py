"""Quarantine bounds and replay (issue 12 item 4) on the real broker, ingestor and
store: payloads cut at the cap with size and digest kept, a per-topic rate limit
whose drops are counted (table and metric), retention by the ingestor and by
`emissions quarantine prune`, and replay through the normal path (API and CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from api.app import create_app
from api.auth import Role, create_key
from api.repository.quarantine import list_quarantine
from core.park.loader import parse_park
from core.park.models import Park
from core.park.repository import apply_park
from core.settings import Settings
from tests.api_support import bearer
from tests.ingest_harness import (
    BASE_TS,
    IngestProcess,
    publish_all,
    wait_for_count,
)
from tests.kit.ingest import IngestStack
from tests.kit.paths import ROOT

TS = int(BASE_TS.timestamp())


@pytest.fixture
def ingest_factory(stack: IngestStack) -> Iterator[Callable[..., IngestProcess]]:
    """Starts ingestors with these environment settings, each stopped after the test."""
    with ExitStack() as running:

        def start(**env: str) -> IngestProcess:
            return running.enter_context(stack.ingest("svc-ingest-2", **env))

        yield start


def _metric(scraped: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _wait(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def _drops(engine: Engine) -> list[tuple[Any, ...]]:
    return _rows(engine, "SELECT source, site_id, reason, dropped FROM quarantine_drops")


def test_payload_cap_and_rate_limit_count_what_they_drop(
    stack: IngestStack, ingest_factory: Callable[..., IngestProcess]
) -> None:
    engine, broker = stack.engine, stack.broker
    noisy, _ = stack.gateway(index=0)
    quiet, meters = stack.gateway(index=1)
    ingest = ingest_factory(
        EMISSIONS_INGEST_QUARANTINE_MAX_PAYLOAD_BYTES="512",
        EMISSIONS_INGEST_QUARANTINE_BURST="5",
        EMISSIONS_INGEST_QUARANTINE_PER_MINUTE="0.01",
    )
    garbage = [b"not json %02d " % n + b"x" * 2000 for n in range(12)]
    batch = {
        "readings": [
            {"meter": meters[0], "ts": TS, "value": 1.0},
            *({"meter": f"NO-SUCH-{n}", "ts": TS, "value": 2.0} for n in range(3)),
        ]
    }
    publish_all(broker, noisy, [(f"parks/NCK/gateways/{noisy}", g) for g in garbage])
    publish_all(broker, quiet, [(f"parks/NCK/gateways/{quiet}", json.dumps(batch).encode())])
    assert wait_for_count(engine, 1) == 1  # the good reading of the batch is stored
    _wait(lambda: sum(d[3] for d in _drops(engine)) == 7)
    assert wait_for_count(engine, 5 + 3, table="quarantine") == 8
    assert _drops(engine) == [(f"parks/NCK/gateways/{noisy}", "NCK", "not_json", 7)]
    kept = _rows(
        engine,
        "SELECT length(payload), payload_bytes, payload_sha256 FROM quarantine "
        "WHERE topic = :t ORDER BY id",
        t=f"parks/NCK/gateways/{noisy}",
    )
    assert [(n, full) for n, full, _ in kept] == [(512, 2012)] * 5
    assert {bytes(h) for *_, h in kept} <= {hashlib.sha256(g).digest() for g in garbage}
    shared = _rows(
        engine,
        "SELECT length(payload), payload_bytes FROM quarantine WHERE topic = :t ORDER BY id",
        t=f"parks/NCK/gateways/{quiet}",
    )
    size = len(json.dumps(batch).encode())
    assert shared == [(size, None), (0, size), (0, size)]  # one copy per message
    with engine.connect() as conn:
        listed = {i["id"]: i for i in list_quarantine(conn, "NCK", None, 100)}
    assert sum(i["payload_truncated"] for i in listed.values()) == 5 + 2
    assert {i["payload_bytes"] for i in listed.values()} == {2012, size}
    with engine.begin() as conn:
        token = create_key(conn, "auditor", Role.admin)
    with TestClient(create_app(stack.settings, engine)) as client:
        answer = client.get("/v1/quarantine/drops?site=NCK", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    drops = [(d["source"], d["reason"], d["dropped"]) for d in answer.json()["items"]]
    assert drops == [(f"parks/NCK/gateways/{noisy}", "not_json", 7)]
    scraped = ingest.metrics()
    assert _metric(scraped, "emissions_ingest_quarantine_dropped_total", reason="not_json") == 7
    assert _metric(scraped, "emissions_ingest_quarantine_payloads_truncated_total") == 5
    assert _metric(scraped, "emissions_ingest_quarantined_total", reason="not_json") == 12


def _insert(engine: Engine, days_ago: int, tag: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO quarantine (received_at, topic, site_id, reason, detail, payload, "
                "payload_sha256) VALUES (now() - make_interval(days => :d), 'parks/NCK/meters/X', "
                "'NCK', 'not_json', :tag, :p, sha256(:p))"
            ),
            {"d": days_ago, "tag": tag, "p": tag.encode()},
        )
        conn.execute(
            text(
                "INSERT INTO quarantine_drops (source, site_id, reason, hour, dropped) "
                "VALUES (:tag, 'NCK', 'not_json', "
                "date_trunc('hour', now() - make_interval(days => :d)), 3)"
            ),
            {"d": days_ago, "tag": tag},
        )


def test_retention_by_the_ingestor_and_by_the_command(
    park_db: tuple[Settings, Engine], ingest_factory: Callable[..., IngestProcess]
) -> None:
    settings, engine = park_db
    _insert(engine, 100, "old")
    _insert(engine, 10, "recent")
    ingest = ingest_factory(EMISSIONS_INGEST_QUARANTINE_RETENTION_DAYS="30")
    _wait(lambda: _rows(engine, "SELECT detail FROM quarantine") == [("recent",)])
    assert [d[0] for d in _drops(engine)] == ["recent"]
    scraped = ingest.metrics()
    assert _metric(scraped, "emissions_ingest_quarantine_pruned_total") == 1
    assert _metric(scraped, "emissions_ingest_quarantine_last_prune_timestamp_seconds") > 0
    ingest.stop()
    _insert(engine, 8, "older than a week")
    password = settings.db_password
    done = subprocess.run(
        [sys.executable, "-m", "cli", "quarantine", "prune", "--days", "7"],
        cwd=ROOT,
        env={
            **os.environ,
            "EMISSIONS_DB_NAME": settings.db_name,
            "EMISSIONS_DB_PASSWORD": password.get_secret_value() if password else "",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "deleted 2 quarantine row(s) and 2 drop count(s) older than 7 days" in done.stdout
    assert _rows(engine, "SELECT count(*) FROM quarantine") == [(0,)]


def _with_meters(park: Park, enterprise_id: str, meter_ids: list[str]) -> Park:
    """The park with these meters added to one enterprise (registered on apply)."""
    data = park.model_dump(mode="json")
    for site in data["sites"]:
        for enterprise in site["enterprises"]:
            if enterprise["id"] == enterprise_id:
                enterprise["meters"] += [
                    {
                        "id": meter_id,
                        "kind": "electricity",
                        "unit": "kWh",
                        "reading": "counter",
                        "commissioned_at": "2020-01-01T00:00:00+07:00",
                    }
                    for meter_id in meter_ids
                ]
    return parse_park(data)


def _open_rows(engine: Engine) -> list[tuple[Any, ...]]:
    return _rows(engine, "SELECT id, detail FROM quarantine WHERE replayed_at IS NULL ORDER BY id")


def test_replay_after_registering_the_meter_stores_or_quarantines_again(
    stack: IngestStack, ingest_factory: Callable[..., IngestProcess]
) -> None:
    settings, engine, park = stack.settings, stack.engine, stack.park
    gw, meters = stack.gateway(index=2)
    enterprise = next(e for s in park.sites for e in s.enterprises if e.gateway_id == gw)
    batch = {
        "readings": [
            {"meter": meters[0], "ts": TS, "value": 10.0},
            {"meter": "NCK-NEW-01", "ts": TS, "value": 20.0},
            {"meter": "NCK-GHOST-01", "ts": TS, "value": 30.0},
        ]
    }
    ingest_factory()
    publish_all(stack.broker, gw, [(f"parks/NCK/gateways/{gw}", json.dumps(batch).encode())])
    assert wait_for_count(engine, 2, table="quarantine") == 2
    assert wait_for_count(engine, 1) == 1
    first = [row_id for row_id, _ in _open_rows(engine)]
    with engine.begin() as conn:
        apply_park(conn, _with_meters(park, enterprise.id, ["NCK-NEW-01"]))
        token = create_key(conn, "replayer", Role.admin)
        operator = create_key(conn, "watcher", Role.operator)
    with TestClient(create_app(settings, engine)) as client:
        url = "/v1/quarantine/replay"
        assert (
            client.post(url, json={"ids": first[:1]}, headers=bearer(operator)).status_code == 403
        )
        answer = client.post(url, json={"ids": [first[0], 999_999]}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        replayed, missing = answer.json()["items"]
        again = client.post(url, json={"ids": [first[1]]}, headers=bearer(token)).json()
        too_many = client.post(url, json={"ids": list(range(1, 1002))}, headers=bearer(token))
    assert missing == {**missing, "id": 999_999, "outcome": "not_found"}
    # The whole message was replayed once: both of its rows are marked.
    assert replayed["outcome"] == "replayed" and replayed["rows"] == first
    assert (replayed["stored"], replayed["duplicates"]) == (1, 1)
    assert replayed["quarantined"] == {"unknown_meter": 1}
    assert again["items"][0]["outcome"] == "already_replayed"
    assert too_many.status_code == 422
    stored = _rows(engine, "SELECT meter_id, value FROM readings ORDER BY meter_id")
    assert stored == sorted([(meters[0], 10.0), ("NCK-NEW-01", 20.0)])
    [(ghost_row, detail)] = _open_rows(engine)
    assert ghost_row not in first and "NCK-GHOST-01" in detail
    marks = _rows(engine, "SELECT replay_result FROM quarantine WHERE id = ANY(:ids)", ids=first)
    assert {m[0] for m in marks} == {
        "stored 1, duplicates 1, conflicts 0, quarantined again: unknown_meter 1"
    }
    # Never both: a stored reading has no open quarantine row, and the other way round.
    open_details = " ".join(d for _, d in _open_rows(engine))
    assert all(meter not in open_details for meter, _ in stored)
    # The CLI takes the same path: the ghost is still unknown, quarantined again.
    password = settings.db_password
    done = subprocess.run(
        [sys.executable, "-m", "cli", "quarantine", "replay", str(ghost_row)],
        cwd=ROOT,
        env={
            **os.environ,
            "EMISSIONS_DB_NAME": settings.db_name,
            "EMISSIONS_DB_PASSWORD": password.get_secret_value() if password else "",
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "replayed" in done.stdout and "unknown_meter 1" in done.stdout
    [(newest, _)] = _open_rows(engine)
    assert newest > ghost_row
    assert _rows(engine, "SELECT count(*) FROM readings") == [(2,)]
    with TestClient(create_app(settings, engine)) as client:
        listed = {
            state: client.get(f"/v1/quarantine?state={state}", headers=bearer(token)).json()
            for state in ("open", "replayed", "all")
        }
    assert [i["id"] for i in listed["open"]["items"]] == [newest]
    replayed_rows = listed["replayed"]["items"]
    assert sorted(i["id"] for i in replayed_rows) == sorted([*first, ghost_row])
    assert all(i["replayed_at"] and i["replay_result"] for i in replayed_rows)
    assert len(listed["all"]["items"]) == 4


def test_a_payload_cut_at_the_cap_is_not_replayed(
    park_db: tuple[Settings, Engine],
) -> None:
    settings, engine = park_db
    whole = b'{"readings": [' + b" " * 100 + b"]}"
    with engine.begin() as conn:
        row_id = conn.execute(
            text(
                "INSERT INTO quarantine (topic, site_id, reason, detail, payload, payload_sha256, "
                "payload_bytes) VALUES ('parks/NCK/gateways/G', 'NCK', 'oversized', 'cut', "
                ":p, :h, :n) RETURNING id"
            ),
            {"p": whole[:20], "h": hashlib.sha256(whole).digest(), "n": len(whole)},
        ).scalar_one()
        token = create_key(conn, "replayer", Role.admin)
    with TestClient(create_app(settings, engine)) as client:
        answer = client.post(
            "/v1/quarantine/replay", json={"ids": [row_id]}, headers=bearer(token)
        ).json()
    assert answer["items"][0]["outcome"] == "payload_cut"
    assert _open_rows(engine) == [(row_id, "cut")]
