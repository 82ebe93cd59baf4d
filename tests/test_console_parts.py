"""The console's parts without a browser: users and their hashes, the CLI, the
cookies' signatures, locale formatting and the SVG charts' geometry."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from starlette.responses import Response
from typer.testing import CliRunner

from api.auth import Role
from api.console import charts
from api.console.i18n import environment, number, percent, when
from api.console.session import Cookies, secret_key
from api.console.users import (
    UserError,
    active_user,
    authenticate_user,
    create_user,
    disable_user,
)
from cli.main import app
from core.settings import Environment, Settings, SettingsError

PASSWORD = "a long enough password"


def test_users_store_argon2_hashes_and_disabling_ends_sessions(
    park_db: tuple[Settings, Engine],
) -> None:
    _, engine = park_db
    with engine.begin() as conn:
        user = create_user(conn, "op", PASSWORD, Role.operator)
        tenant = create_user(conn, "tn", PASSWORD, Role.tenant, "NCK-WWTP", "en")
        stored = conn.execute(
            text("SELECT password_hash FROM console_users WHERE id = :i"), {"i": user.id}
        ).scalar_one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert authenticate_user(conn, "op", PASSWORD) == user
        assert authenticate_user(conn, "op", PASSWORD + "x") is None
        assert authenticate_user(conn, "nobody", PASSWORD) is None
        assert tenant.principal.enterprise_id == "NCK-WWTP" and tenant.principal.is_tenant
        assert user.principal.name == "user:op"
        bad: list[tuple[str, str, Role, str | None]] = [
            ("op", PASSWORD, Role.operator, None),  # exists
            ("short", "short", Role.operator, None),
            ("t2", PASSWORD, Role.tenant, None),
            ("t3", PASSWORD, Role.tenant, "NOPE"),
            ("bad name", PASSWORD, Role.admin, None),
        ]
        for name, password, role, enterprise in bad:
            with pytest.raises(UserError):
                create_user(conn, name, password, role, enterprise)
        assert disable_user(conn, "op")
        assert not disable_user(conn, "op")
        assert active_user(conn, user.id) is None
        assert authenticate_user(conn, "op", PASSWORD) is None


def test_user_cli_create_list_disable(
    park_db: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings, _ = park_db
    monkeypatch.setenv("EMISSIONS_DB_NAME", settings.db_name)
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "user",
            "create",
            "ann",
            "--role",
            "tenant",
            "--enterprise",
            "NCK-STL1",
            "--password-file",
            str(secret),
        ],
    )
    assert made.exit_code == 0, made.output
    generated = runner.invoke(app, ["user", "create", "bob", "--role", "admin", "--generate"])
    assert generated.exit_code == 0, generated.output
    assert re.search(r"^[A-Za-z0-9_-]{20}$", generated.stdout, re.MULTILINE)
    twice = runner.invoke(app, ["user", "create", "bob", "--role", "admin", "--generate"])
    assert twice.exit_code == 1 and "exists already" in twice.output
    listed = runner.invoke(app, ["user", "list"])
    assert "ann" in listed.stdout and "NCK-STL1" in listed.stdout and "argon2" not in listed.stdout
    assert runner.invoke(app, ["user", "disable", "ann"]).exit_code == 0
    assert runner.invoke(app, ["user", "disable", "ann"]).exit_code == 1


def test_session_cookie_is_signed_and_production_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="EMISSIONS_CONSOLE_SECRET_KEY"):
        secret_key(Settings(environment=Environment.production, state_dir=tmp_path))
    generated = secret_key(Settings(state_dir=tmp_path))
    assert (tmp_path / "secrets" / "console_secret_key").stat().st_mode & 0o777 == 0o600
    assert secret_key(Settings(state_dir=tmp_path)) == generated  # one key per state dir
    a = Cookies(Settings(state_dir=tmp_path, console_secret_key=SecretStr("one")))
    b = Cookies(Settings(state_dir=tmp_path, console_secret_key=SecretStr("two")))
    assert a._session.loads(a._session.dumps(7)) == 7
    with pytest.raises(Exception, match="Signature"):
        b._session.loads(a._session.dumps(7))


def test_cookies_are_httponly_lax_and_secure_when_configured(tmp_path: Path) -> None:
    for secure in (False, True):
        settings = Settings(
            state_dir=tmp_path, console_secret_key=SecretStr("k"), console_cookie_secure=secure
        )
        response = Response()
        Cookies(settings).start_session(response, 1)
        headers = response.headers.getlist("set-cookie")
        assert len(headers) == 2  # the session and a fresh CSRF token
        for header in headers:
            assert "HttpOnly" in header and "SameSite=lax" in header
            assert ("Secure" in header) is secure


def test_numbers_and_dates_follow_the_locale() -> None:
    assert number(12345.678, "vi") == "12.345,68"
    assert number(12345.678, "en") == "12,345.68"
    assert percent(0.1234, "vi") == "12,3%"
    assert percent(None, "en") == "–"
    t = datetime(2026, 1, 2, 17, 30, tzinfo=UTC)
    assert when(t, "Asia/Ho_Chi_Minh", "vi") == "03/01/2026 00:30 +07:00"
    page = environment("vi").from_string("{{ _('Sign out') }} {{ _('Open alerts') }}").render()
    assert page == "Đăng xuất Cảnh báo đang mở"


def test_bar_chart_scales_to_the_largest_value_and_names_its_units() -> None:
    svg = charts.bars_with_line(
        [10.0, 20.0, 40.0],
        [30.0, 30.0, 30.0],
        [(0, "01/06")],
        charts.Axis("Day (UTC)"),
        charts.Axis("CO2e, kg per hour"),
        "t",
    )
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', svg)]
    assert heights[1] == pytest.approx(2 * heights[0]) and heights[2] == pytest.approx(
        4 * heights[0]
    )
    assert ">CO2e, kg per hour</text>" in svg and ">Day (UTC)</text>" in svg
    assert 'class="budget"' in svg and svg.count('class="bar"') == 3
    line = charts.lines_by_year(
        [2025, 2026, 2027],
        [100.0, 90.0, 80.0],
        [95.0, None, None],
        [2027],
        charts.Axis("Year"),
        charts.Axis("tCO2e <per> year"),
        "r",
    )
    assert line.count('class="actual"') == 1 and line.count('class="milestone"') == 1
    assert "tCO2e &lt;per&gt; year" in line  # escaped
