"""The console on the real stack: the API app served by uvicorn on a free port, and
Debian's headless Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr
from sqlalchemy import Engine

from api.app import create_app
from api.auth import Role
from api.console.users import create_user
from bench.stack.processes import wait_http_ok
from core.settings import Settings
from tests.kit.broker import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"  # a throw-away test database's


@dataclass
class Console:
    url: str
    settings: Settings

    def api(self, path: str, key: str, **params: str | None) -> httpx.Response:
        return httpx.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


def console_settings(base: Settings, tmp: Path) -> Settings:
    return base.model_copy(
        update={"console_secret_key": SecretStr("test-console-key"), "state_dir": tmp}
    )


@contextmanager
def serve(settings: Settings, engine: Engine) -> Iterator[Console]:
    """The whole API app (console included) on a free port until the block ends;
    ready when /healthz answers."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(url + "/healthz", thread.is_alive, timeout=20)
        yield Console(url, settings)
    finally:
        server.should_exit = True
        thread.join(10)


def add_users(engine: Engine) -> None:
    """One console user per role, like the API keys of tests/api_support.py."""
    with engine.begin() as conn:
        create_user(conn, "admin", PASSWORD, Role.admin, locale="en")
        create_user(conn, "operator", PASSWORD, Role.operator, locale="en")
        create_user(conn, "wwtp", PASSWORD, Role.tenant, "NCK-WWTP", locale="en")
        create_user(conn, "stl1", PASSWORD, Role.tenant, "NCK-STL1", locale="vi")


@contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def sign_in(browser: Browser, url: str, username: str, password: str = PASSWORD) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/console/signin")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#signin")
    return page
