"""Console benchmark: render time of the park overview page (issue 16).

A throw-away database gets the sample park (config/park.yaml) and a full year of
meter-hours for every meter, ending at the current hour, so that the overview's
today / month / year to date, its 7-day chart and the enterprise ranking all have
data (loaded as bench/api.py loads it, totals by the engine's `refresh_totals`).
`emissions api` runs as a subprocess (uvicorn, one worker); this process signs in
as a console user over HTTP (CSRF token and all) and asks for
GET /console/overview?site=NCK over one keep-alive connection, timing from
sending the request to the last byte of the HTML.

It prints a table, writes bench/results/console-<UTC timestamp>.json (git-ignored)
and prints that path. Goal: p99 <= 500 ms for the overview.

    .venv/bin/python -m bench.console [--requests N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import create_engine

from api.auth import Role
from api.console.users import create_user
from bench.api import get, latency_table, load, loaded_database, measure
from bench.report import console, environment, write_results
from bench.stack.services import start_api
from core.settings import Settings

SITE = "NCK"
GOAL_P99_MS = 500.0
PASSWORD = secrets.token_urlsafe(16)


def add_user(settings: Settings) -> None:
    """The console user the bench signs in as."""
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            create_user(conn, "bench", PASSWORD, Role.operator, locale="vi")
    finally:
        engine.dispose()


def _cookie(response: http.client.HTTPResponse, name: str) -> str:
    for header in response.headers.get_all("Set-Cookie") or []:
        if header.startswith(name + "="):
            return header.split(";", 1)[0]
    raise RuntimeError(f"no {name} cookie in the answer")


def sign_in(client: http.client.HTTPConnection) -> str:
    """The Cookie header of a signed-in session, obtained as a browser would."""
    client.request("GET", "/console/signin")
    page = client.getresponse()
    html = page.read().decode()
    csrf_cookie = _cookie(page, "pem_csrf")
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    if match is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    body = urlencode({"username": "bench", "password": PASSWORD, "csrf": match.group(1)})
    client.request(
        "POST",
        "/console/signin",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": csrf_cookie},
    )
    answer = client.getresponse()
    answer.read()
    if answer.status != 303:
        raise RuntimeError(f"sign-in answered {answer.status}")
    return f"{_cookie(answer, 'pem_session')}; {_cookie(answer, 'pem_csrf')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="overview requests")
    args = parser.parse_args()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=365)
    with contextlib.ExitStack() as stack:
        settings, counts, _ = loaded_database(stack, lambda s: load(s, start, end))
        add_user(settings)
        port = start_api(
            settings, {"EMISSIONS_CONSOLE_SECRET_KEY": secrets.token_urlsafe(32)}, stack
        )
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        stack.callback(client.close)
        headers = {"Cookie": sign_in(client)}
        url = f"/console/overview?site={SITE}"
        started = time.perf_counter()
        first = get(client, url, headers)
        cold_ms = round((time.perf_counter() - started) * 1000, 2)
        if b'id="year_to_date"' not in first:
            raise RuntimeError("the overview did not render")
        results: dict[str, Any] = {
            "overview": {
                "first_request_ms": cold_ms,
                **measure(client, url, headers, args.requests),
            }
        }
    r = results["overview"]
    console.print(latency_table("page", results, {"overview": f"p99 <= {GOAL_P99_MS:.0f} ms"}))
    console.print(f"first (cold) request {cold_ms:.0f} ms; load average {os.getloadavg()[0]:.2f}")
    report = {
        "benchmark": "console",
        "at": datetime.now(UTC).isoformat(),
        "window": [start.isoformat(), end.isoformat()],
        "loaded": counts,
        "results": results,
        "goal": {"overview_p99_ms": GOAL_P99_MS},
        "met": r["p99_ms"] <= GOAL_P99_MS,
        "environment": environment(Settings()),
        "load_average": os.getloadavg(),
    }
    write_results("console", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
