"""Replay's promise as a property on the real store: whatever mix of registered,
unregistered and later-registered meters a gateway batch names, after the meters
are registered and every row of the message is replayed, each reading is stored
or quarantined again (an open row naming it), never both and never neither, and
the original rows stay, marked replayed."""

from __future__ import annotations

import itertools
import json
from contextlib import closing
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from core import topics
from core.park.models import Park
from core.park.repository import apply_park
from core.settings import Settings
from ingest.meters import load_meters
from ingest.parse import parse_message
from ingest.replay import Outcome, replay_quarantined
from ingest.writer import BatchWriter, Message
from tests.ingest_harness import BASE_TS, gateway
from tests.test_quarantine_bounds import _with_meters

_examples = itertools.count()

# Per reading: an own registered meter, a meter registered before the replay, or
# one that stays unknown; and a value (negative ones are quarantined either way).
READING = st.tuples(
    st.sampled_from(["own", "later", "never"]),
    st.integers(0, 2),
    st.sampled_from([1.0, 2.5, -1.0]),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(READING, min_size=1, max_size=12))
def test_every_replayed_reading_ends_stored_or_quarantined_never_both(
    park_db: tuple[Settings, Engine],
    test_park: Park,
    readings: list[tuple[str, int, float]],
) -> None:
    cfg, engine = park_db
    n = next(_examples)
    gw, own = gateway(test_park, index=3)
    enterprise = next(e.id for s in test_park.sites for e in s.enterprises if e.gateway_id == gw)

    def name(kind: str, k: int) -> str:
        return own[k % len(own)] if kind == "own" else f"NCK-{kind.upper()}-{n}-{k}"

    base = int(BASE_TS.timestamp()) + n * 100
    rows = [(name(kind, k), base + i, value) for i, (kind, k, value) in enumerate(readings)]
    items = [{"meter": m, "ts": ts, "value": v} for m, ts, v in rows]
    topic = topics.batch("parks", "NCK", gw)
    payload = json.dumps({"readings": items, "example": n}).encode()
    with engine.connect() as conn:
        meters = load_meters(conn, [])
    parsed = parse_message(topic, payload, "parks", meters, datetime.now(UTC))
    with closing(BatchWriter(cfg.libpq_url)) as writer:
        writer.write([Message(topic, payload, parsed)])
    later = sorted({m for m, _, _ in rows if "-LATER-" in m})
    with engine.begin() as conn:
        apply_park(conn, _with_meters(test_park, enterprise, later))
        first = list(
            conn.execute(
                text("SELECT id FROM quarantine WHERE topic = :t AND detail LIKE :d"),
                {"t": topic, "d": "readings[%"},
            ).scalars()
        )
        mine = [
            i
            for i in first
            if conn.execute(
                text("SELECT payload_sha256 = sha256(:p) FROM quarantine WHERE id = :i"),
                {"p": payload, "i": i},
            ).scalar_one()
        ]
        results = replay_quarantined(conn, mine, cfg) if mine else []
    assert all(r.outcome is Outcome.replayed for r in results)
    with engine.connect() as conn:
        open_details = list(
            conn.execute(
                text(
                    "SELECT detail FROM quarantine WHERE topic = :t AND replayed_at IS NULL "
                    "AND payload_sha256 = sha256(:p)"
                ),
                {"t": topic, "p": payload},
            ).scalars()
        )
        still_open_originals = conn.execute(
            text("SELECT count(*) FROM quarantine WHERE id = ANY(:ids) AND replayed_at IS NULL"),
            {"ids": mine},
        ).scalar_one()
        stored = {
            (str(m), int(ts.timestamp()))
            for m, ts in conn.execute(
                text("SELECT meter_id, ts FROM readings WHERE ts >= :a AND ts < :b"),
                {
                    "a": datetime.fromtimestamp(base, UTC),
                    "b": datetime.fromtimestamp(base + 100, UTC),
                },
            )
        }
    assert still_open_originals == 0
    quarantined = {int(d.split("]")[0].removeprefix("readings[")) for d in open_details}
    for i, (meter, ts, value) in enumerate(rows):
        is_stored = (meter, ts) in stored
        assert is_stored != (i in quarantined), (i, meter, is_stored, open_details)
        assert is_stored == (value >= 0 and "-NEVER-" not in meter), (i, meter, value)
