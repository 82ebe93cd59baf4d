"""The report endpoints over the sample park priced by the real engine: formats,
totals against the hourly API, submissions, and tenant isolation on every one."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from tests.api_support import ApiEnv, bearer

OWN, OTHER = "NCK-WWTP", "NCK-STL1"


@pytest.fixture(scope="module")
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    with TestClient(create_app(api_env.settings, api_env.engine)) as c:
        yield c


def _hourly_kg(client: TestClient, key: str, enterprise: str | None = None) -> float:
    """CO2e of 2025 from the hourly API, as an auditor would add it up."""
    total = 0.0
    for start, end in (("2025-01-01", "2025-07-01"), ("2025-07-01", "2026-01-01")):
        url = (
            f"/v1/emissions/hourly?site=NCK&start={start}T00:00:00%2B07:00"
            f"&end={end}T00:00:00%2B07:00"
        )
        if enterprise:
            url += f"&enterprise={enterprise}"
        items = client.get(url, headers=bearer(key)).json()["items"]
        total += math.fsum(i["co2e_kg"] for i in items)
    return total


def test_inventory_totals_equal_the_hourly_totals(client: TestClient, api_env: ApiEnv) -> None:
    key = api_env.keys["operator"]
    report = client.get("/v1/reports/inventory?site=NCK&year=2025", headers=bearer(key))
    assert report.status_code == 200
    body = report.json()
    assert body["totals"]["co2e_kg"] > 0
    assert math.isclose(body["totals"]["co2e_kg"], _hourly_kg(client, key), rel_tol=1e-9)
    stl1 = next(e for e in body["enterprises"] if e["id"] == OTHER)
    assert math.isclose(stl1["totals"]["co2e_kg"], _hourly_kg(client, key, OTHER), rel_tol=1e-9)
    # STL1's diesel genset: scope 1 with its TOE from the ministry's factor.
    diesel = next(s for s in stl1["sources"] if s["kind"] == "diesel")
    assert diesel["scope"] == 1 and diesel["consumption"] > 0
    assert math.isclose(diesel["toe"], diesel["consumption"] * 0.00088, rel_tol=1e-12)
    assert {f["key"] for f in body["factors"]} >= {"VN-GRID", "DIESEL-STATIONARY"}
    assert {t["kind"] for t in body["toe_factors"]} == {
        "electricity",
        "diesel",
        "lpg",
        "natural_gas",
    }
    # STL1-E-01 misses three hours of readings: estimated hours in the completeness.
    meter = next(m for m in stl1["meters"] if m["meter_id"] == "NCK-STL1-E-01")
    assert meter["estimated_hours"] > 0 and meter["accuracy_pct"] == 0.5
    # The quarantined test messages arrived this year: in this year's QA/QC log only.
    assert body["qaqc"]["quarantined_by_reason"] == {}
    this_year = datetime.now(UTC).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).year
    now = client.get(f"/v1/reports/inventory?site=NCK&year={this_year}", headers=bearer(key))
    assert now.json()["qaqc"]["quarantined_by_reason"] == {"invalid": 3}


def test_inventory_as_xlsx_and_html(client: TestClient, api_env: ApiEnv) -> None:
    key = bearer(api_env.keys["operator"])
    xlsx = client.get("/v1/reports/inventory?site=NCK&year=2025&format=xlsx", headers=key)
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    general = load_workbook(io.BytesIO(xlsx.content))["1 General"]
    rows = {r[0]: r[1] for r in general.iter_rows(min_row=2, values_only=True)}
    body = client.get("/v1/reports/inventory?site=NCK&year=2025", headers=key).json()
    assert rows["Total CO2e (kg)"] == body["totals"]["co2e_kg"]
    html = client.get("/v1/reports/inventory?site=NCK&year=2025&format=html", headers=key)
    assert html.headers["content-type"].startswith("text/html")
    assert "Greenhouse gas inventory" in html.text


def test_two_year_cycle_and_bad_parameters(client: TestClient, api_env: ApiEnv) -> None:
    key = bearer(api_env.keys["operator"])
    cycle = client.get("/v1/reports/inventory?site=NCK&year=2024&years=2", headers=key).json()
    assert cycle["period"]["start"] == "2023-12-31T17:00:00Z"
    assert cycle["period"]["end"] == "2025-12-31T17:00:00Z"
    one = client.get("/v1/reports/inventory?site=NCK&year=2025", headers=key).json()
    assert math.isclose(cycle["totals"]["co2e_kg"], one["totals"]["co2e_kg"], rel_tol=1e-9)
    for bad in ("years=3", "format=pdf", "year=abc"):
        url = f"/v1/reports/inventory?site=NCK&year=2025&{bad}".replace("year=2025&year", "year")
        assert client.get(url, headers=key).status_code == 422


def test_submission_through_the_api(client: TestClient, api_env: ApiEnv) -> None:
    tenant = bearer(api_env.keys["wwtp"])
    body = {"site": "NCK", "year": 2025}
    assert client.post("/v1/reports/submissions", json=body, headers=bearer(
        api_env.keys["operator"])).status_code == 403  # fmt: skip
    made = client.post("/v1/reports/submissions", json=body, headers=tenant)
    assert made.status_code == 201
    sub = made.json()
    assert sub["enterprise"] == OWN and sub["previous_hash"] is None
    detail = client.get(f"/v1/reports/submissions/{sub['id']}", headers=tenant).json()
    assert detail["changes"] == []  # nothing restated since
    assert detail["document"]["enterprise"] == OWN
    listed = client.get("/v1/reports/submissions?site=NCK", headers=tenant).json()
    assert [s["id"] for s in listed["items"]] == [sub["id"]]
    assert listed["chains"][OWN]["valid"] is True


def test_every_report_endpoint_isolates_tenants(client: TestClient, api_env: ApiEnv) -> None:
    admin = bearer(api_env.keys["admin"])
    other = client.post(
        "/v1/reports/submissions", json={"site": "NCK", "year": 2025, "enterprise": OTHER},
        headers=admin,
    ).json()  # fmt: skip
    tenant = bearer(api_env.keys["wwtp"])
    for path in (
        f"/v1/reports/inventory?site=NCK&year=2025&enterprise={OTHER}",
        f"/v1/reports/inventory?site=NCK&year=2025&enterprise={OTHER}&format=xlsx",
        "/v1/reports/inventory?site=DVU&year=2025",
        f"/v1/reports/obligation?site=NCK&enterprise={OTHER}",
        "/v1/reports/obligation?site=DVU",
        f"/v1/reports/intensity?site=NCK&year=2025&enterprise={OTHER}",
        f"/v1/reports/submissions?site=NCK&enterprise={OTHER}",
        f"/v1/reports/submissions/{other['id']}",
    ):
        assert client.get(path, headers=tenant).status_code == 404, path
    posted = client.post(
        "/v1/reports/submissions", json={"site": "NCK", "year": 2025, "enterprise": OTHER},
        headers=tenant,
    )  # fmt: skip
    assert posted.status_code == 404
    # Without an enterprise, a tenant gets its own, never the park or another's.
    own = client.get("/v1/reports/inventory?site=NCK&year=2025", headers=tenant).json()
    assert own["enterprise"] == OWN and [e["id"] for e in own["enterprises"]] == [OWN]
    positions = client.get("/v1/reports/obligation?site=NCK", headers=tenant).json()["items"]
    assert [p["enterprise_id"] for p in positions] == [OWN]
    intensity = client.get("/v1/reports/intensity?site=NCK&year=2025", headers=tenant).json()
    assert [i["enterprise_id"] for i in intensity["items"]] == [OWN]
    listed = client.get("/v1/reports/submissions?site=NCK", headers=tenant).json()
    assert other["id"] not in [s["id"] for s in listed["items"]]
    assert OTHER not in listed["chains"]
    for path in ("/v1/reports/inventory?site=NCK&year=2025", "/v1/reports/obligation?site=NCK"):
        assert client.get(path).status_code == 401


def test_report_commands(api_env: ApiEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMISSIONS_DB_NAME", api_env.settings.db_name)
    runner = CliRunner()
    target = tmp_path / "inventory.xlsx"
    made = runner.invoke(
        cli, ["report", "inventory", "--site", "NCK", "--year", "2025", "--enterprise", OTHER,
              "--format", "xlsx", "--out", str(target)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    rows = load_workbook(target)["1 General"].iter_rows(min_row=2, values_only=True)
    assert {r[0]: r[1] for r in rows}["Enterprise"] == OTHER
    submitted = runner.invoke(
        cli, ["report", "submit", "--site", "NCK", "--year", "2025", "--enterprise", "NCK-GAR1"]
    )
    assert submitted.exit_code == 0, submitted.output
    verified = runner.invoke(cli, ["report", "verify", "--site", "NCK", "--enterprise", "NCK-GAR1"])
    assert verified.exit_code == 0 and '"valid": true' in verified.stdout
    unknown = runner.invoke(cli, ["report", "obligation", "--site", "NOPE"])
    assert unknown.exit_code == 1 and "not found" in unknown.output
