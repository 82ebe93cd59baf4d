"""core/db.py's sessions: what every connection of the service is set up with."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
from sqlalchemy import text

from core.db import make_engine
from core.settings import Settings

# A query JIT would compile whenever it is on and its cost threshold is 0.
PLAN = "EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(g) FROM generate_series(1, 10000) AS g"


def _uses_jit(plan: object) -> bool:
    return "JIT" in json.dumps(plan)


def test_service_sessions_never_jit_compile(database_factory: Callable[[], Settings]) -> None:
    """A hypertable's plan holds a scan per chunk, and JIT spent seconds compiling
    them for queries that run in milliseconds: the service's sessions turn it off,
    even where the database says otherwise."""
    settings = database_factory()
    with psycopg.connect(settings.libpq_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{settings.db_name}" SET jit = on')
        admin.execute(f'ALTER DATABASE "{settings.db_name}" SET jit_above_cost = 0')
    with psycopg.connect(settings.libpq_url) as plain:  # the control: JIT is available
        (plan,) = plain.execute(PLAN).fetchone() or (None,)
    assert _uses_jit(plan)
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            plan = conn.execute(text(PLAN)).scalar_one()
    finally:
        engine.dispose()
    assert not _uses_jit(plan)
