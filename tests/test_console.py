"""The console in a real browser (Debian's headless Chromium via Playwright) against
the real API process and TimescaleDB: sign-in and sign-out, the same numbers as the
API, tenant isolation, CSRF, Vietnamese pages and the forms of admins."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from core.park.models import Park
from core.reporting import actual_tco2e
from core.settings import Settings
from tests import api_support
from tests.api_support import ApiEnv
from tests.console_support import (
    CHROMIUM,
    Console,
    add_users,
    browser,
    console_settings,
    serve,
    sign_in,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: save each page's picture there


@pytest.fixture(scope="module")
def env(
    database_factory: Callable[[], Settings],
    test_park: Park,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiEnv]:
    """The API tests' park and readings, moved to the last 36 hours so that today,
    this month and this year have data."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    original = api_support.T0
    api_support.T0 = now - timedelta(hours=36)
    try:
        built = api_support.build(database_factory, test_park)
    finally:
        api_support.T0 = original
    add_users(built.engine)
    built.settings = console_settings(built.settings, tmp_path_factory.mktemp("console"))
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def console(env: ApiEnv) -> Iterator[Console]:
    with serve(env.settings, env.engine) as c:
        yield c


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as b:
        yield b


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _value(page: Page, selector: str) -> float:
    raw = page.locator(selector).first.get_attribute("data-value")
    assert raw is not None, selector
    return float(raw)


def test_sign_in_and_sign_out(console: Console, chromium: Browser) -> None:
    page = chromium.new_page()
    page.goto(console.url + "/console/overview?site=NCK")
    assert page.url.endswith("/console/signin")  # not signed in: sent to sign in
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "not the password")
    with page.expect_navigation():
        page.click("#signin")
    expect(page.locator("#failed")).to_be_visible()
    page.close()
    page = sign_in(chromium, console.url, "operator")
    assert "/console/overview?site=" in page.url  # the first site's overview
    cookie = next(c for c in page.context.cookies() if c["name"] == "pem_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    with page.expect_navigation():
        page.click("#signout")
    assert page.url.endswith("/console/signin")
    page.goto(console.url + "/console/overview?site=NCK")
    assert page.url.endswith("/console/signin")  # the session is gone
    page.close()


def test_overview_shows_the_api_numbers(env: ApiEnv, console: Console, chromium: Browser) -> None:
    page = sign_in(chromium, console.url, "operator")
    page.goto(console.url + "/console/overview?site=NCK")
    _shot(page, "overview")
    if SHOTS:  # the same page on a tablet
        page.set_viewport_size({"width": 820, "height": 1180})
        _shot(page, "overview-tablet")
        page.set_viewport_size({"width": 1280, "height": 900})
    status = console.api("/v1/roadmap/status", env.keys["operator"], site="NCK").json()
    for window in ("today", "month_to_date", "year_to_date"):
        actual = _value(page, f"#{window} .actual")
        assert actual == status[window]["actual_tco2e"]
        assert actual > 0
        # Budgets are pro rata to the time elapsed: a second apart, the same to 1e-4.
        assert _value(page, f"#{window} .budget") == pytest.approx(
            status[window]["budget_tco2e"], rel=1e-4
        )
    assert _value(page, "#forecast .budget") == status["forecast"]["target_tco2e"]
    axes = page.locator("svg.chart").first.locator("text.axis").all_text_contents()
    assert axes == ["CO2e, kg per hour", "Day (Asia/Ho_Chi_Minh)"]  # units and time zone
    assert page.locator("svg.chart .bar").count() == 7 * 24
    alerts = console.api("/v1/alerts", env.keys["operator"], site="NCK", state="open").json()
    shown = page.locator("table.alerts tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert shown == [f"alert-{a['id']}" for a in alerts["items"]]
    share = page.locator("#by-share tbody tr").first.get_attribute("data-enterprise")
    assert share == "NCK-STL1"  # the steel works emit the most
    mtd = status["month_to_date"]
    with env.engine.connect() as conn:
        for enterprise in ("NCK-STL1", "NCK-WWTP"):
            expected = actual_tco2e(
                conn,
                "NCK",
                datetime.fromisoformat(mtd["start"]),
                datetime.fromisoformat(mtd["end"]),
                enterprise_id=enterprise,
            )
            shown = _value(page, f"#by-share tr[data-enterprise='{enterprise}'] td.n")
            assert shown == pytest.approx(expected, rel=1e-12) and shown > 0
    page.close()


def test_enterprise_and_meters_pages_show_the_api_numbers(
    env: ApiEnv, console: Console, chromium: Browser
) -> None:
    page = sign_in(chromium, console.url, "wwtp")
    assert "/console/enterprise?site=NCK&enterprise=NCK-WWTP" in page.url
    _shot(page, "enterprise")
    week = page.locator("#week .unit")
    start, end = week.get_attribute("data-start"), week.get_attribute("data-end")
    hourly = console.api(
        "/v1/emissions/hourly", env.keys["wwtp"], site="NCK", start=start, end=end
    ).json()
    total = 0.0
    for item in hourly["items"]:
        total += item["co2e_kg"]
    assert _value(page, "#week .actual") == total > 0
    first_day = page.locator("#daily tbody tr").last.get_attribute("data-day")
    daily = console.api(
        "/v1/emissions/daily",
        env.keys["wwtp"],
        site="NCK",
        start=first_day,
        end=(datetime.fromisoformat(str(first_day)) + timedelta(days=1)).date().isoformat(),
    ).json()
    assert _value(page, "#daily tbody tr:last-child td.n") == daily["items"][0]["co2e_kg"]
    page.goto(console.url + "/console/meters?site=NCK")
    _shot(page, "meters")
    meters = console.api("/v1/meters", env.keys["wwtp"], site="NCK").json()["items"]
    rows = page.locator("#meters tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert rows == [f"meter-{m['id']}" for m in meters]  # its own meters only
    for m in meters:
        row = page.locator(f"tr[id='meter-{m['id']}']")
        shown = row.locator("td.last").get_attribute("data-value")
        if m["last_reading_at"] is None:
            assert shown == ""
        else:
            assert datetime.fromisoformat(str(shown)) == datetime.fromisoformat(
                m["last_reading_at"]
            )
        assert row.locator("td.glitch").inner_text() == str(m["data_quality"].get("glitch", 0))
    page.close()


def test_tenant_gets_404_for_another_enterprise(console: Console, chromium: Browser) -> None:
    page = sign_in(chromium, console.url, "wwtp")
    for path in (
        "/console/enterprise?site=NCK&enterprise=NCK-STL1",
        "/console/downloads/hourly.csv?site=NCK&enterprise=NCK-STL1&start=2025-06-01&end=2025-06-02",
        "/console/downloads/inventory.csv?site=NCK&enterprise=NCK-STL1&year=2025",
        "/console/meters?site=DVU",
    ):
        response = page.request.get(console.url + path)
        assert response.status == 404, path
    assert page.request.get(console.url + "/console/overview?site=NCK").status == 403
    assert page.request.get(console.url + "/console/quarantine?site=NCK").status == 403
    own = page.request.get(
        console.url + "/console/downloads/inventory.csv?site=NCK&enterprise=NCK-WWTP&year=2025"
    )
    assert own.status == 200
    bad = page.request.get(console.url + "/console/downloads/inventory.csv?site=NCK&year=soon")
    assert bad.status == 422 and "year" in bad.text() and "<html" in bad.text()
    page.close()


def test_downloads_equal_the_api_csv(env: ApiEnv, console: Console, chromium: Browser) -> None:
    page = sign_in(chromium, console.url, "operator")
    page.goto(console.url + "/console/downloads?site=NCK")
    _shot(page, "downloads")
    today = datetime.now(UTC).date()
    start, end = (today - timedelta(days=3)).isoformat(), (today + timedelta(days=1)).isoformat()
    mine = page.request.get(
        console.url + f"/console/downloads/hourly.csv?site=NCK&start={start}&end={end}"
    )
    a = datetime.fromisoformat(f"{start}T00:00:00+07:00")
    b = datetime.fromisoformat(f"{end}T00:00:00+07:00")
    api = console.api(
        "/v1/emissions/hourly",
        env.keys["operator"],
        site="NCK",
        start=a.isoformat(),
        end=b.isoformat(),
        format="csv",
    )
    assert mine.body() == api.content
    assert len(list(csv.reader(io.StringIO(api.text)))) > 24
    page.close()


def test_form_without_csrf_token_is_refused(
    env: ApiEnv, console: Console, chromium: Browser
) -> None:
    page = sign_in(chromium, console.url, "admin")
    with env.engine.connect() as conn:
        alert_id = conn.execute(
            text("SELECT id FROM alerts WHERE state = 'firing' ORDER BY id LIMIT 1")
        ).scalar_one()
    forms: list[dict[str, str | float | bool]] = [{"site": "NCK"}, {"site": "NCK", "csrf": "x"}]
    for form in forms:
        response = page.request.post(
            console.url + f"/console/alerts/{alert_id}/ack", form=form, max_redirects=0
        )
        assert response.status == 403
    with env.engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM alerts WHERE id = :i"), {"i": alert_id})
        assert state.scalar_one() == "firing"
    signin = page.request.post(
        console.url + "/console/signin",
        form={"username": "admin", "password": "x"},
        max_redirects=0,
    )
    assert signin.status == 403
    page.close()


def test_vietnamese_pages_and_the_switcher(
    env: ApiEnv, console: Console, chromium: Browser
) -> None:
    page = sign_in(chromium, console.url, "stl1")  # stored language: vi
    assert page.locator("html").get_attribute("lang") == "vi"
    body = page.locator("body").inner_text()
    assert "Doanh nghiệp NCK-STL1" in body and "Đăng xuất" in body and "Cảnh báo đang mở" in body
    _shot(page, "enterprise-vi")
    page.goto(console.url + "/console/meters?site=NCK")
    assert "Đồng hồ đo và chất lượng dữ liệu" in page.locator("h1").inner_text()
    with page.expect_navigation():
        page.click("button.lang[value=en]")
    expect(page.locator("h1")).to_have_text("Meters and data quality")
    with env.engine.connect() as conn:
        stored = conn.execute(text("SELECT locale FROM console_users WHERE username = 'stl1'"))
        assert stored.scalar_one() == "en"
    with page.expect_navigation():
        page.click("button.lang[value=vi]")
    expect(page.locator("h1")).to_contain_text("Đồng hồ đo")
    page.close()


def test_admin_pages_and_forms(env: ApiEnv, console: Console, chromium: Browser) -> None:
    page = sign_in(chromium, console.url, "admin")
    page.goto(console.url + "/console/quarantine?site=NCK")
    _shot(page, "quarantine")
    api = console.api("/v1/quarantine", env.keys["admin"], site="NCK").json()["items"]
    rows = page.locator("#quarantine tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert rows == [f"q-{q['id']}" for q in api]
    page.goto(console.url + "/console/alerts?site=NCK&state=all")
    _shot(page, "alerts")
    every = console.api("/v1/alerts", env.keys["admin"], site="NCK", state="all").json()["items"]
    rows = page.locator("table.alerts tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert rows == [f"alert-{a['id']}" for a in every]
    page.goto(console.url + "/console/factors?site=NCK")
    _shot(page, "factors")
    factor = page.locator("section[id^=factor-]").first
    key = str(factor.get_attribute("id")).removeprefix("factor-")
    factor.locator("summary").click()
    factor.locator("input[name=valid_from]").fill("2030-01-01T00:00:00+07:00")
    factor.locator("input[name=kgco2e_per_unit]").fill("0.5")
    factor.locator("input[name=source]").fill("MONRE revision 2030")
    with page.expect_navigation():
        factor.locator("form.publish button").click()
    expect(page.locator("#note")).to_be_visible()
    with env.engine.connect() as conn:
        source = conn.execute(
            text(
                "SELECT source FROM emission_factor_values WHERE factor_key = :k "
                "AND valid_from = '2030-01-01T00:00:00+07:00'"
            ),
            {"k": key},
        ).scalar_one()
    assert source == "MONRE revision 2030"
    page.goto(console.url + "/console/meters?site=NCK")
    page.select_option("#replacement select[name=meter]", "NCK-WWTP-E-01")
    at = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    page.fill("#replacement input[name=replaced_at]", at)
    page.fill("#replacement input[name=old_final_value]", "99999")
    page.fill("#replacement input[name=new_start_value]", "0")
    with page.expect_navigation():
        page.click("#replacement button")
    expect(page.locator("#note")).to_be_visible()
    with env.engine.connect() as conn:
        swaps = conn.execute(
            text("SELECT count(*) FROM meter_replacements WHERE meter_id = 'NCK-WWTP-E-01'")
        ).scalar_one()
    assert swaps == 1
    page.close()
    operator = sign_in(chromium, console.url, "operator")
    refused = operator.request.get(console.url + "/console/quarantine?site=NCK")
    assert refused.status == 403
    operator.close()


def test_replay_from_the_console_stores_the_message_and_marks_the_row(
    env: ApiEnv, console: Console, chromium: Browser
) -> None:
    """A message quarantined before its meter was known is replayed by an admin's
    form: its reading ends stored, and the row stays, marked replayed."""
    ts = (datetime.now(UTC) - timedelta(minutes=37)).replace(second=17, microsecond=0)
    payload = f'{{"ts": "{ts.isoformat()}", "value": 4321.5}}'.encode()
    with env.engine.begin() as conn:
        row_id = conn.execute(
            text(
                "INSERT INTO quarantine (topic, site_id, reason, detail, payload, payload_sha256) "
                "VALUES ('parks/NCK/meters/NCK-WWTP-W-01', 'NCK', 'unknown_meter', "
                "'registered later', :p, sha256(:p)) RETURNING id"
            ),
            {"p": payload},
        ).scalar_one()
    page = sign_in(chromium, console.url, "admin")
    page.goto(console.url + "/console/quarantine?site=NCK")
    page.check(f"#q-{row_id} input[name=ids]")
    with page.expect_navigation():
        page.click("#replay button.replay")
    expect(page.locator("#note")).to_contain_text("replayed 1 of 1")
    expect(page.locator(f"#q-{row_id} td.replayed")).to_contain_text("stored 1")
    page.close()
    with env.engine.connect() as conn:
        value = conn.execute(
            text("SELECT value FROM readings WHERE meter_id = 'NCK-WWTP-W-01' AND ts = :ts"),
            {"ts": ts},
        ).scalar_one()
        replayed = conn.execute(
            text("SELECT replayed_at IS NOT NULL FROM quarantine WHERE id = :i"), {"i": row_id}
        ).scalar_one()
    assert value == 4321.5
    assert replayed


def test_ghg_inventory_downloads_follow_the_api_scope(console: Console, chromium: Browser) -> None:
    year = datetime.now(UTC).year
    admin = sign_in(chromium, console.url, "admin")
    admin.goto(console.url + "/console/downloads?site=NCK")
    link = admin.locator("a[href*='ghg-inventory'][href*='format=xlsx']").first
    got = admin.request.get(console.url + str(link.get_attribute("href")))
    assert got.status == 200
    assert got.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert got.body()[:2] == b"PK"  # a zip container: the workbook
    admin.close()
    tenant = sign_in(chromium, console.url, "wwtp")
    own = tenant.request.get(
        console.url + f"/console/downloads/ghg-inventory?site=NCK&year={year}&format=html"
    )
    assert own.status == 200 and "NCK-WWTP" in own.text()
    other = tenant.request.get(
        console.url
        + f"/console/downloads/ghg-inventory?site=NCK&year={year}&format=html&enterprise=NCK-STL1"
    )
    assert other.status == 404
    tenant.close()
