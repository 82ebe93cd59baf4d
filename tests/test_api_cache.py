"""The rendered-day cache of the hourly endpoint never serves a stale hour: after
the engine restates hours, or any row of a day changes, the answer is the table's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from core import dirty_marks
from engine.service import refresh_until_clean
from ingest.parse import Parsed, Reading
from ingest.writer import BatchWriter, Message
from tests.api_support import T0, ApiEnv, bearer

URL = "/v1/emissions/hourly?site=NCK&start=2025-05-31T12:00:00Z&end=2025-06-03T05:00:00Z"


@pytest.fixture(scope="module")
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    with TestClient(create_app(api_env.settings, api_env.engine)) as c:
        yield c


def _answer(client: TestClient, api_env: ApiEnv, url: str = URL) -> Any:
    response = client.get(url, headers=bearer(api_env.keys["operator"]))
    assert response.status_code == 200, response.text
    return response.json()


def _uncached(api_env: ApiEnv, url: str = URL) -> Any:
    settings = api_env.settings.model_copy(update={"api_hourly_cache_mb": 0})
    with TestClient(create_app(settings, api_env.engine)) as c:
        return c.get(url, headers=bearer(api_env.keys["operator"])).json()


def test_cache_follows_every_change(client: TestClient, api_env: ApiEnv) -> None:
    cache = client.app.state.hourly_cache  # type: ignore[attr-defined]
    first = _answer(client, api_env)
    assert first == _uncached(api_env)
    assert _answer(client, api_env) == first
    assert cache.hits >= 2  # the two full days came from the cache the second time
    # Late readings: the engine restates hours of the first day.
    with closing(BatchWriter(api_env.settings.libpq_url)) as writer:
        late = [Reading("NCK-STL1-E-01", T0 + timedelta(hours=10, minutes=7), 1000.0 + 300 * 41.5)]
        writer.write([Message("parks/NCK/meters/NCK-STL1-E-01", b"", Parsed("NCK", late))])
    refresh_until_clean(api_env.engine)
    second = _answer(client, api_env)
    assert second == _uncached(api_env)
    assert second != first
    # Enterprise ranges too, and partial days at both ends.
    url = URL.replace("site=NCK", "site=NCK&enterprise=NCK-STL1")
    got, want = _answer(client, api_env, url), _uncached(api_env, url)
    for g, w in zip(got["items"], want["items"], strict=True):
        assert g == w, (g, w)
    assert got == want
    # A factor restatement rewrites every day of the enterprise's electricity.
    with api_env.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE emission_factor_values SET kgco2e_per_unit = kgco2e_per_unit * 2 "
                "WHERE factor_key = 'VN-GRID' AND valid_from <= :t"
            ),
            {"t": T0},
        )
        stale = conn.execute(
            text("SELECT meter_id, hour FROM hourly_emissions WHERE enterprise_id = 'NCK-STL1'")
        ).all()
        hours = [r.hour for r in stale]
        dirty_marks.mark_hours(conn, [r.meter_id for r in stale], hours, hours)
    refresh_until_clean(api_env.engine)
    doubled = _answer(client, api_env, url)
    assert doubled == _uncached(api_env, url) and doubled != got


def test_meter_replacement(client: TestClient, api_env: ApiEnv) -> None:
    url = "/v1/meters/NCK-STL1-W-01/replacements"
    body = {
        "replaced_at": "2025-06-01T17:05:00+07:00",
        "old_final_value": 1000.0 + 1.25 * 40,
        "new_start_value": 0.0,
        "note": "register swapped",
    }
    hourly = "/v1/emissions/hourly?site=NCK&meter=NCK-STL1-W-01&" + URL.split("&", 1)[1]
    before = _answer(client, api_env, hourly)
    assert client.post(url, json=body, headers=bearer(api_env.keys["operator"])).status_code == 403
    assert client.post(url, json=body, headers=bearer(api_env.keys["wwtp"])).status_code == 404
    created = client.post(url, json=body, headers=bearer(api_env.keys["admin"]))
    assert created.status_code == 201, created.text
    assert created.json()["replaced_at"] == "2025-06-01T10:05:00Z"
    again = client.post(url, json=body, headers=bearer(api_env.keys["admin"]))
    assert again.status_code == 409
    for bad in (
        {**body, "replaced_at": "2025-06-01T10:05:00"},  # naive
        {**body, "old_final_value": -1},
        {**body, "replaced_at": "2099-01-01T00:00:00Z"},  # future
    ):
        response = client.post(url, json=bad, headers=bearer(api_env.keys["admin"]))
        assert response.status_code == 422, (bad, response.text)
    delta = client.post(
        "/v1/meters/NCK-WWTP-E-03/replacements", json=body, headers=bearer(api_env.keys["admin"])
    )
    assert delta.status_code == 422
    refresh_until_clean(api_env.engine)
    after = _answer(client, api_env, hourly)
    assert after != before and after == _uncached(api_env, hourly)
    meter = client.get("/v1/meters/NCK-STL1-W-01", headers=bearer(api_env.keys["admin"])).json()
    assert meter["data_quality"]["replacement"] == 1
