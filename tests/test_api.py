"""The HTTP API on the real database with the sample park (SPEC section 6): shapes,
numbers equal to the engine's tables, CSV equal to JSON, errors and limits."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from api.app import create_app
from tests.api_support import T0, ApiEnv, bearer
from tests.kit.broker import Broker, free_port

DAY = "start=2025-06-01T07:00:00%2B07:00&end=2025-06-03T00:00:00Z"


@pytest.fixture(scope="module")
def client(api_env: ApiEnv, broker: Broker) -> Iterator[TestClient]:
    settings = api_env.settings.model_copy(update={"mqtt_port": broker.port})
    with TestClient(create_app(settings, api_env.engine)) as c:
        yield c


def get(client: TestClient, api_env: ApiEnv, url: str, key: str = "operator", **kw: Any) -> Any:
    response = client.get(url, headers={**bearer(api_env.keys[key]), **kw.pop("headers", {})}, **kw)
    assert response.status_code == 200, response.text
    return response


def test_open_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"store": "ok", "broker": "ok"}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    assert client.get("/docs").status_code == 200
    assert "/v1/emissions/hourly" in client.get("/openapi.json").json()["paths"]


def test_readyz_reports_an_unreachable_broker(api_env: ApiEnv) -> None:
    settings = api_env.settings.model_copy(update={"mqtt_port": free_port()})
    with TestClient(create_app(settings, api_env.engine)) as c:
        response = c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["store"] == "ok"
    assert response.json()["checks"]["broker"].startswith("unreachable")


PROTECTED = [
    f"/v1/emissions/hourly?site=NCK&{DAY}",
    "/v1/emissions/daily?site=NCK&start=2025-06-01&end=2025-06-03",
    "/v1/emissions/monthly?site=NCK&start=2025-01-01&end=2026-01-01",
    "/v1/roadmap/status?site=NCK",
    "/v1/roadmap/trajectory?site=NCK",
    "/v1/inventory?site=NCK&year=2025",
    "/v1/meters?site=NCK",
    "/v1/meters/NCK-WWTP-E-01",
    "/v1/alerts?site=NCK",
    "/v1/quarantine?site=NCK",
]


@pytest.mark.parametrize("url", PROTECTED)
def test_keys_are_required(client: TestClient, api_env: ApiEnv, url: str) -> None:
    for headers in (
        {},
        bearer(api_env.keys["revoked"]),
        bearer("pem_not-a-key"),
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert isinstance(response.json()["detail"], str)
    assert client.post("/v1/alerts/1/ack").status_code == 401
    assert get(client, api_env, url, key="admin").status_code == 200


def test_admin_key_from_the_environment(api_env: ApiEnv) -> None:
    settings = api_env.settings.model_copy(
        update={"admin_api_key": SecretStr("env-secret-key-0123456789")}
    )
    with TestClient(create_app(settings, api_env.engine)) as c:
        ok = c.get("/v1/quarantine?site=NCK", headers=bearer("env-secret-key-0123456789"))
        assert ok.status_code == 200
        assert c.get("/v1/quarantine", headers=bearer("env-secret-key-x")).status_code == 401


def _table(
    api_env: ApiEnv, sql: str, **params: Any
) -> dict[str, dict[str, tuple[float, str, float]]]:
    out: dict[str, dict[str, tuple[float, str, float]]] = {}
    with api_env.engine.connect() as conn:
        for r in conn.execute(text(sql), params):
            hour = r.hour.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.setdefault(hour, {})[r.kind] = (r.consumption, r.unit, r.co2e_kg)
    return out


def _as_table(body: dict[str, Any]) -> dict[str, dict[str, tuple[float, str, float]]]:
    return {
        item["hour"]: {
            k: (v["consumption"], v["unit"], v["co2e_kg"]) for k, v in item["by_kind"].items()
        }
        for item in body["items"]
    }


def test_hourly_equals_the_engine_tables(client: TestClient, api_env: ApiEnv) -> None:
    body = get(client, api_env, f"/v1/emissions/hourly?site=NCK&{DAY}").json()
    assert body["site"] == "NCK" and body["enterprise"] is None and body["meter"] is None
    hours = [i["hour"] for i in body["items"]]
    assert hours == sorted(hours) and hours[0] == "2025-06-01T00:00:00Z"
    assert len(hours) == 36
    site = _table(api_env, "SELECT * FROM site_hourly WHERE site_id = 'NCK'")
    assert _as_table(body) == site  # exact, bit for bit
    for item in body["items"]:
        assert item["co2e_kg"] == pytest.approx(sum(v["co2e_kg"] for v in item["by_kind"].values()))
    assert {"electricity", "solar", "water", "diesel"} <= set(body["items"][5]["by_kind"])
    assert body["items"][5]["by_kind"]["solar"]["co2e_kg"] == 0.0
    # Hours missing readings of the gap meter are estimated; the others are not.
    estimated = [i["hour"] for i in body["items"] if i["estimated"]]
    assert estimated and len(estimated) < len(hours)

    ent = get(client, api_env, f"/v1/emissions/hourly?site=NCK&enterprise=NCK-WWTP&{DAY}").json()
    assert ent["enterprise"] == "NCK-WWTP"
    assert _as_table(ent) == _table(
        api_env, "SELECT * FROM enterprise_hourly WHERE enterprise_id = 'NCK-WWTP'"
    )
    # Sub-meters are out of totals: the enterprise's electricity is its main meter's.
    meter = get(client, api_env, f"/v1/emissions/hourly?site=NCK&meter=NCK-WWTP-E-01&{DAY}").json()
    assert _as_table(meter) == _table(
        api_env, "SELECT * FROM hourly_emissions WHERE meter_id = 'NCK-WWTP-E-01'"
    )
    for e_item, m_item in zip(ent["items"], meter["items"], strict=True):
        assert e_item["by_kind"]["electricity"] == m_item["by_kind"]["electricity"]


def test_offsets_and_bad_parameters(client: TestClient, api_env: ApiEnv) -> None:
    utc = get(
        client,
        api_env,
        "/v1/emissions/hourly?site=NCK&start=2025-06-01T00:00:00Z&end=2025-06-01T05:00:00Z",
    )
    local = get(
        client,
        api_env,
        "/v1/emissions/hourly?site=NCK&start=2025-06-01T07:00:00%2B07:00"
        "&end=2025-06-01T00:00:00-05:00",
    )
    assert utc.json() == local.json() and len(utc.json()["items"]) == 5
    for query in (
        "start=2025-06-01T00:00:00&end=2025-06-02T00:00:00Z",  # naive
        "start=2025-06-01T00:00:00Z&end=2025-06-02T00:00:00",
        "start=2025-06-02T00:00:00Z&end=2025-06-01T00:00:00Z",  # reversed
        "start=2025-06-01T00:00:00Z&end=2025-06-01T00:00:00Z",  # empty
        "start=2024-01-01T00:00:00Z&end=2025-06-01T00:00:00Z",  # too long
        "start=0001-01-01T00:00:00%2B14:00&end=2025-06-01T00:00:00Z",
        "start=yesterday&end=2025-06-01T00:00:00Z",
        "end=2025-06-01T00:00:00Z",
    ):
        response = client.get(
            f"/v1/emissions/hourly?site=NCK&{query}", headers=bearer(api_env.keys["admin"])
        )
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"][0]["msg"]
    bad = client.get("/v1/meters?site=NCK&limit=100000", headers=bearer(api_env.keys["admin"]))
    assert bad.status_code == 422
    assert (
        client.get("/v1/meters?site=N%00K", headers=bearer(api_env.keys["admin"])).status_code
        == 422
    )


def test_csv_equals_json(client: TestClient, api_env: ApiEnv) -> None:
    for scope in ("", "&enterprise=NCK-STL1", "&meter=NCK-STL1-D-01"):
        url = f"/v1/emissions/hourly?site=NCK{scope}&{DAY}"
        body = get(client, api_env, url).json()
        response = get(client, api_env, url, headers={"Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content == get(client, api_env, url + "&format=csv").content
        rebuilt: dict[str, dict[str, Any]] = {}
        for row in csv.DictReader(io.StringIO(response.text)):
            item = rebuilt.setdefault(
                row["hour"],
                {
                    "hour": row["hour"],
                    "co2e_kg": float(row["co2e_kg"]),
                    "estimated": row["estimated"] == "true",
                    "by_kind": {},
                },
            )
            item["by_kind"][row["kind"]] = {
                "consumption": float(row["consumption"]),
                "unit": row["unit"],
                "co2e_kg": float(row["kind_co2e_kg"]),
            }
        assert list(rebuilt.values()) == body["items"]


def test_daily_and_monthly_totals(client: TestClient, api_env: ApiEnv) -> None:
    hourly = get(client, api_env, f"/v1/emissions/hourly?site=NCK&{DAY}").json()["items"]
    daily = get(
        client, api_env, "/v1/emissions/daily?site=NCK&start=2025-06-01&end=2025-06-03"
    ).json()
    assert daily["timezone"] == "Asia/Ho_Chi_Minh" and daily["period"] == "day"
    # Hai Phong days start at 17:00 UTC: the first local day holds hours 00-16 UTC.
    assert [d["period"] for d in daily["items"]] == ["2025-06-01", "2025-06-02"]
    assert daily["items"][0]["hours"] == 17 and daily["items"][1]["hours"] == 19
    for d in daily["items"]:
        c = d["coverage"]
        assert c["expected_meter_hours"] == 39 * 24  # the main meters, all day long
        assert math.isclose(c["measured_share"] + c["estimated_share"] + c["missing_share"], 1.0)
        assert 0 < c["measured_share"] <= 1
    assert math.isclose(
        sum(d["co2e_kg"] for d in daily["items"]), sum(h["co2e_kg"] for h in hourly), rel_tol=1e-12
    )
    for d in daily["items"]:
        assert math.isclose(sum(d["by_scope"].values()), d["co2e_kg"], rel_tol=1e-12)
        assert d["by_scope"]["1"] > 0 and d["by_scope"]["2"] > 0 and d["by_scope"]["3"] > 0
        assert d["avoided_co2e_kg"] > 0  # the park's solar
    monthly = get(
        client, api_env, "/v1/emissions/monthly?site=NCK&start=2025-01-01&end=2026-01-01"
    ).json()
    assert [m["period"] for m in monthly["items"]] == ["2025-06"]
    assert math.isclose(
        monthly["items"][0]["co2e_kg"], sum(h["co2e_kg"] for h in hourly), rel_tol=1e-12
    )
    bad = client.get(
        "/v1/emissions/daily?site=NCK&start=2020-01-01&end=2025-01-01",
        headers=bearer(api_env.keys["admin"]),
    )
    assert bad.status_code == 422


COVERAGE_FIELDS = {"expected_meter_hours", "measured_share", "estimated_share", "missing_share"}


def test_roadmap_status_and_trajectory(client: TestClient, api_env: ApiEnv) -> None:
    status = get(client, api_env, "/v1/roadmap/status?site=NCK").json()
    assert set(status) == {
        "site",
        "timezone",
        "now",
        "today",
        "month_to_date",
        "year_to_date",
        "forecast",
    }
    for window in ("today", "month_to_date", "year_to_date"):
        w = status[window]
        assert w["start"].endswith("Z") and w["end"] == status["now"]
        assert w["budget_tco2e"] >= 0 and w["actual_tco2e"] >= 0
        assert set(w["coverage"]) == COVERAGE_FIELDS
    assert set(status["forecast"]) == {
        "year",
        "ytd_actual_tco2e",
        "run_rate_tco2e_per_day",
        "forecast_tco2e",
        "gap_fill_tco2e",
        "target_tco2e",
        "ratio",
        "ytd_coverage",
        "run_rate_coverage",
    }
    # The fixture's data is from 2025: this year's windows are all missing, and say so.
    ytd = status["year_to_date"]["coverage"]
    assert ytd["expected_meter_hours"] > 0 and ytd["missing_share"] == 1.0
    trajectory = get(client, api_env, "/v1/roadmap/trajectory?site=NCK").json()
    points = {p["year"]: p for p in trajectory["points"]}
    assert points[2020]["target_tco2e"] == 45000.0 and points[2030]["target_tco2e"] == 0.0
    assert points[2025]["actual_tco2e"] > 0 and points[2024]["actual_tco2e"] is None
    no_roadmap = client.get("/v1/roadmap/status?site=DVU", headers=bearer(api_env.keys["operator"]))
    assert no_roadmap.status_code == 404
    tenant = client.get("/v1/roadmap/status?site=NCK", headers=bearer(api_env.keys["wwtp"]))
    assert tenant.status_code == 403


def test_inventory_json_and_csv(client: TestClient, api_env: ApiEnv) -> None:
    inv = get(client, api_env, "/v1/inventory?site=NCK&year=2025").json()
    assert inv["year"] == 2025 and inv["timezone"] == "Asia/Ho_Chi_Minh"
    kinds = {(line["month"], line["scope"], line["kind"]) for line in inv["lines"]}
    assert ("2025-06", 2, "electricity") in kinds and ("2025-06", 1, "diesel") in kinds
    assert ("2025-06", 3, "water") in kinds
    elec = next(line for line in inv["lines"] if line["kind"] == "electricity")
    assert elec["unit"] == "kWh"
    assert [f["key"] for f in elec["factors"]] == ["VN-GRID"]
    assert elec["factors"][0]["kgco2e_per_unit"] == 0.6592 and "DCC" in elec["factors"][0]["source"]
    assert 0 < elec["completeness"] < 1 and 0 <= elec["estimated_share"] < 1
    assert math.isclose(sum(inv["by_scope"].values()), inv["total_co2e_kg"], rel_tol=1e-12)
    daily = get(
        client, api_env, "/v1/emissions/daily?site=NCK&start=2025-05-01&end=2025-07-01"
    ).json()
    assert math.isclose(
        inv["total_co2e_kg"], sum(d["co2e_kg"] for d in daily["items"]), rel_tol=1e-12
    )
    text_csv = get(
        client, api_env, "/v1/inventory?site=NCK&year=2025", headers={"Accept": "text/csv"}
    ).text
    rows = list(csv.DictReader(io.StringIO(text_csv)))
    assert len(rows) == len(inv["lines"])
    for row, line in zip(rows, inv["lines"], strict=True):
        assert (row["month"], int(row["scope"]), row["kind"]) == (
            line["month"],
            line["scope"],
            line["kind"],
        )
        assert float(row["co2e_kg"]) == line["co2e_kg"]
        assert float(row["consumption"]) == line["consumption"]
    ent = get(client, api_env, "/v1/inventory?site=NCK&year=2025&enterprise=NCK-STL1").json()
    assert ent["enterprise"] == "NCK-STL1" and ent["total_co2e_kg"] < inv["total_co2e_kg"]


def test_meters(client: TestClient, api_env: ApiEnv) -> None:
    body = get(client, api_env, "/v1/meters?site=NCK&limit=100").json()
    assert body["total"] == len(body["items"]) > 50
    by_id = {m["id"]: m for m in body["items"]}
    wwtp = by_id["NCK-WWTP-E-01"]
    assert wwtp["last_reading_at"] == "2025-06-02T12:00:00Z"
    assert wwtp["data_quality"]["glitch"] == 1
    assert by_id["NCK-WWTP-W-01"]["data_quality"]["quarantined"] == 3
    assert by_id["NCK-WWTP-E-02"]["parent"] == "NCK-WWTP-E-01"
    assert by_id["NCK-GAR2-E-01"]["last_reading_at"] is None
    one = get(client, api_env, "/v1/meters/NCK-WWTP-E-01").json()
    assert one == wwtp
    page = get(client, api_env, "/v1/meters?site=NCK&limit=5&offset=5").json()
    assert [m["id"] for m in page["items"]] == [m["id"] for m in body["items"]][5:10]
    assert (
        client.get("/v1/meters/NOPE", headers=bearer(api_env.keys["operator"])).status_code == 404
    )


def test_quarantine_is_admin_only_newest_first(client: TestClient, api_env: ApiEnv) -> None:
    assert (
        client.get("/v1/quarantine?site=NCK", headers=bearer(api_env.keys["operator"])).status_code
        == 403
    )
    assert (
        client.get("/v1/quarantine?site=NCK", headers=bearer(api_env.keys["wwtp"])).status_code
        == 403
    )
    first = get(client, api_env, "/v1/quarantine?site=NCK&limit=2", key="admin").json()
    assert [i["detail"] for i in first["items"]] == ["case 2", "case 1"]
    assert (
        first["items"][1]["payload"].endswith("not json")
        and first["items"][1]["payload_bytes"] == 11
    )
    rest = get(
        client,
        api_env,
        f"/v1/quarantine?site=NCK&limit=2&before={first['next_before']}",
        key="admin",
    )
    assert [i["detail"] for i in rest.json()["items"]] == ["case 0"]
    assert rest.json()["next_before"] is None


def test_alerts_list_and_ack(client: TestClient, api_env: ApiEnv) -> None:
    all_ = get(client, api_env, "/v1/alerts?site=NCK&state=all").json()["items"]
    assert len(all_) == 4
    firing = get(client, api_env, "/v1/alerts?site=NCK&state=firing").json()["items"]
    resolved = get(client, api_env, "/v1/alerts?site=NCK&state=resolved").json()["items"]
    assert {a["state"] for a in firing} == {"firing"} and len(firing) == 3
    assert [a["subject"] for a in resolved] == ["NCK-WWTP-W-01"]
    mine = get(client, api_env, "/v1/alerts?site=NCK", key="wwtp").json()["items"]
    assert {a["enterprise"] for a in mine} == {"NCK-WWTP"}
    target = next(a for a in firing if a["enterprise"] == "NCK-STL1")
    url = f"/v1/alerts/{target['id']}/ack"
    assert client.post(url, headers=bearer(api_env.keys["operator"])).status_code == 403
    assert client.post(url, headers=bearer(api_env.keys["stl1"])).status_code == 403
    acked = client.post(url, headers=bearer(api_env.keys["admin"]), json={"note": "on it"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"] == "admin"
    again = client.post(url, headers=bearer(api_env.keys["admin"]))
    assert (
        again.status_code == 200
        and again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
    )
    done = client.post(f"/v1/alerts/{resolved[0]['id']}/ack", headers=bearer(api_env.keys["admin"]))
    assert done.status_code == 409
    assert (
        client.post("/v1/alerts/999999/ack", headers=bearer(api_env.keys["admin"])).status_code
        == 404
    )
    with api_env.engine.connect() as conn:
        events = conn.execute(
            text("SELECT state, detail FROM alert_events WHERE alert_id = :a"), {"a": target["id"]}
        ).all()
    assert [tuple(e) for e in events] == [("acknowledged", "by admin: on it")]


def test_request_metrics_use_route_templates(client: TestClient, api_env: ApiEnv) -> None:
    get(client, api_env, "/v1/meters/NCK-WWTP-W-01")
    client.get("/v1/meters/NCK-STL1-W-01")  # 401
    client.get("/no/such/path")
    metrics = client.get("/metrics").text
    assert (
        'emissions_api_request_duration_seconds_count{method="GET",'
        'route="/v1/meters/{meter_id}",status="200"}'
    ) in metrics
    assert 'route="/v1/meters/{meter_id}",status="401"' in metrics
    assert 'route="unmatched",status="404"' in metrics
    assert "NCK-WWTP-W-01" not in metrics


def test_first_hour_is_t0(client: TestClient, api_env: ApiEnv) -> None:
    body = get(client, api_env, f"/v1/emissions/hourly?site=NCK&{DAY}").json()
    assert body["items"][0]["hour"] == T0.strftime("%Y-%m-%dT%H:%M:%SZ")
