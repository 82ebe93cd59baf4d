"""Object-level authorisation (OWASP API1): a tenant key sees its own enterprise only;
every other enterprise's ids, in the path or the query, answer 404. And the
`emissions apikey` commands."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from tests.api_support import ApiEnv, bearer

RANGE = "start=2025-06-01T00:00:00Z&end=2025-06-02T00:00:00Z"
OWN = "NCK-WWTP"


@pytest.fixture(scope="module")
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    with TestClient(create_app(api_env.settings, api_env.engine)) as c:
        yield c


def _ids(api_env: ApiEnv, sql: str) -> list[tuple[str, str, str]]:
    with api_env.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_tenant_sees_its_own_enterprise(client: TestClient, api_env: ApiEnv) -> None:
    headers = bearer(api_env.keys["wwtp"])
    # No enterprise given: the key's enterprise, never the site's totals.
    body = client.get(f"/v1/emissions/hourly?site=NCK&{RANGE}", headers=headers).json()
    assert body["enterprise"] == OWN
    own = client.get(
        f"/v1/emissions/hourly?site=NCK&enterprise={OWN}&{RANGE}",
        headers=bearer(api_env.keys["operator"]),
    ).json()
    assert body["items"] == own["items"]
    meters = client.get("/v1/meters?site=NCK", headers=headers).json()["items"]
    assert {m["enterprise"] for m in meters} == {OWN}
    assert client.get("/v1/meters/NCK-WWTP-E-02", headers=headers).status_code == 200
    inv = client.get("/v1/inventory?site=NCK&year=2025", headers=headers).json()
    assert inv["enterprise"] == OWN
    daily = client.get(
        "/v1/emissions/daily?site=NCK&start=2025-06-01&end=2025-06-02", headers=headers
    )
    assert daily.json()["enterprise"] == OWN


def test_every_other_enterprise_answers_404(client: TestClient, api_env: ApiEnv) -> None:
    headers = bearer(api_env.keys["wwtp"])
    others = _ids(api_env, f"SELECT id, site_id, '' FROM enterprises WHERE id <> '{OWN}'")
    meters = _ids(
        api_env, f"SELECT id, site_id, enterprise_id FROM meters WHERE enterprise_id <> '{OWN}'"
    )
    assert len(others) > 10 and len(meters) > 50
    urls = []
    for enterprise, site, _ in others:
        urls += [
            f"/v1/emissions/hourly?site={site}&enterprise={enterprise}&{RANGE}",
            f"/v1/emissions/hourly?site=NCK&enterprise={enterprise}&{RANGE}",
            f"/v1/emissions/daily?site={site}&enterprise={enterprise}&start=2025-06-01&end=2025-06-02",
            f"/v1/emissions/monthly?site={site}&enterprise={enterprise}&start=2025-06-01&end=2025-07-01",
            f"/v1/inventory?site={site}&enterprise={enterprise}&year=2025",
            f"/v1/meters?site={site}&enterprise={enterprise}",
        ]
    for meter, site, _ in meters:
        urls += [
            f"/v1/meters/{meter}",
            f"/v1/emissions/hourly?site={site}&meter={meter}&{RANGE}",
            f"/v1/emissions/hourly?site=NCK&meter={meter}&{RANGE}",
            f"/v1/emissions/hourly?site={site}&enterprise={OWN}&meter={meter}&{RANGE}",
        ]
    # The other site, even without naming an enterprise.
    urls += [
        f"/v1/emissions/hourly?site=DVU&{RANGE}",
        "/v1/meters?site=DVU",
        "/v1/alerts?site=DVU",
        "/v1/inventory?site=DVU&year=2025",
    ]
    for url in urls:
        response = client.get(url, headers=headers)
        assert response.status_code == 404, (url, response.status_code, response.text)
        assert "not found" in response.json()["detail"]
        # An unknown id answers exactly the same: nothing tells "exists" from "not yours".
    unknown = client.get(f"/v1/emissions/hourly?site=NCK&enterprise=NOPE&{RANGE}", headers=headers)
    assert unknown.status_code == 404


def test_alerts_of_others_are_invisible(client: TestClient, api_env: ApiEnv) -> None:
    headers = bearer(api_env.keys["wwtp"])
    alerts = _ids(api_env, "SELECT id::text, coalesce(enterprise_id, ''), state FROM alerts")
    listed = {a["id"] for a in client.get("/v1/alerts?site=NCK", headers=headers).json()["items"]}
    for alert_id, enterprise, _ in alerts:
        if enterprise == OWN:
            assert int(alert_id) in listed
            continue
        assert int(alert_id) not in listed
        response = client.post(f"/v1/alerts/{alert_id}/ack", headers=headers)
        assert response.status_code == 404, response.text


def test_apikey_commands(api_env: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMISSIONS_DB_NAME", api_env.settings.db_name)
    runner = CliRunner()
    created = runner.invoke(
        cli, ["apikey", "create", "esg-tool", "--role", "tenant", "--enterprise", "NCK-STL1"]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("pem_")
    with TestClient(create_app(api_env.settings, api_env.engine)) as c:
        ok = c.get("/v1/meters?site=NCK", headers=bearer(token))
        assert ok.status_code == 200
        assert {m["enterprise"] for m in ok.json()["items"]} == {"NCK-STL1"}
        listed = runner.invoke(cli, ["apikey", "list"])
        assert listed.exit_code == 0 and "esg-tool" in listed.stdout and token not in listed.stdout
        with api_env.engine.connect() as conn:
            stored = conn.execute(
                text("SELECT key_hash FROM api_keys WHERE name = 'esg-tool'")
            ).scalar()
        assert stored is not None and token not in stored and len(stored) == 64
        revoked = runner.invoke(cli, ["apikey", "revoke", "esg-tool"])
        assert revoked.exit_code == 0, revoked.output
        assert c.get("/v1/meters?site=NCK", headers=bearer(token)).status_code == 401
    assert runner.invoke(cli, ["apikey", "revoke", "esg-tool"]).exit_code == 1
    bad = runner.invoke(cli, ["apikey", "create", "x", "--role", "tenant"])
    assert bad.exit_code == 1
    unknown = runner.invoke(
        cli, ["apikey", "create", "y", "--role", "tenant", "--enterprise", "NOPE"]
    )
    assert unknown.exit_code == 1
