"""HTTP limits (issue 12 item 3): bodies refused before they are read (real uvicorn,
the server's own memory measured), non-finite numbers and long inputs answered
with short 422s, failed authentications throttled, weak keys refused in production,
and one commit point per request."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from api.app import create_app
from api.auth import Role, create_key, new_token
from api.throttle import AuthThrottle
from bench.stack.processes import RssSampler, rss_kib
from core.settings import Environment, Settings, key_weakness
from tests.api_support import ApiEnv, bearer
from tests.kit.broker import free_port
from tests.kit.paths import ROOT
from tests.kit.serving import serving_process

MB = 1024 * 1024
REPLACEMENT = "/v1/meters/NCK-STL1-E-01/replacements"


@pytest.fixture(scope="module")
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    with TestClient(create_app(api_env.settings, api_env.engine)) as c:
        yield c


# --- a real uvicorn process, its memory read from /proc ----------------------------


@pytest.fixture(scope="module")
def server(api_env: ApiEnv) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    password = api_env.settings.db_password
    env = {
        **os.environ,
        "EMISSIONS_DB_NAME": api_env.settings.db_name,
        "EMISSIONS_DB_PASSWORD": password.get_secret_value() if password else "",
        "EMISSIONS_LOG_LEVEL": "WARNING",
    }
    with serving_process(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--no-access-log"],
        f"http://127.0.0.1:{port}/healthz",
        cwd=ROOT,
        env=env,
    ) as proc:
        yield port, proc


def _push(port: int, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send a request head and then body chunks until the server answers or hangs up;
    returns the answer and how many body bytes the socket took."""
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(10)
        try:
            while part := sock.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
    return answer, sent


def _megabytes(total_mb: int, chunked: bool) -> Iterator[bytes]:
    block = b"[" + b"1," * (MB // 2 - 1) + b"1]"
    for _ in range(total_mb):
        yield b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_300_mb_body_is_refused_before_it_is_read(
    server: tuple[int, subprocess.Popen[bytes]],
    chunked: bool,
    record_property: Callable[[str, object], None],
) -> None:
    port, proc = server
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (300 * MB)
    head = (
        b"POST " + REPLACEMENT.encode() + b" HTTP/1.1\r\nHost: api\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n\r\n"
    )
    warm, _ = _push(port, head, _megabytes(2, chunked))  # imports and buffers settle
    assert warm.startswith(b"HTTP/1.1 413")
    before_peak = rss_kib(proc.pid, "VmHWM")
    with RssSampler(proc.pid) as rss:
        answer, sent = _push(port, head, _megabytes(300, chunked))
    growth_kib = max(rss.growth_kib, rss_kib(proc.pid) - rss.before)
    peak_growth_kib = rss_kib(proc.pid, "VmHWM") - before_peak
    record_property("socket_took_mb", round(sent / MB, 1))
    record_property("rss_growth_kib", growth_kib)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"detail":"the request body is over the limit of 65536 bytes"' in answer
    assert sent < 300 * MB  # the server hung up instead of reading it all
    assert growth_kib < 4 * 1024 and peak_growth_kib < 4 * 1024
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_body_limit_applies_before_authentication(client: TestClient, api_env: ApiEnv) -> None:
    big = b'{"note": "' + b"x" * (70 * 1024) + b'"}'
    for headers in ({}, bearer(api_env.keys["admin"])):
        response = client.post("/v1/alerts/1/ack", content=big, headers=headers)
        assert response.status_code == 413, response.text
        assert response.json() == {"detail": "the request body is over the limit of 65536 bytes"}
    metrics = client.get("/metrics").text
    assert 'method="POST",route="unmatched",status="413"' in metrics  # refused unrouted


# --- non-finite numbers and short error bodies ------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_bodies_answer_422(
    client: TestClient, api_env: ApiEnv, number: str
) -> None:
    admin = {**bearer(api_env.keys["admin"]), "Content-Type": "application/json"}
    bodies = {
        REPLACEMENT: (
            '{"replaced_at": "2025-06-01T12:00:00Z", '
            f'"old_final_value": {number}, "new_start_value": 0}}'
        ),
        "/v1/alerts/1/ack": f'{{"note": {number}}}',
    }
    for url, body in bodies.items():
        response = client.post(url, content=body, headers=admin)
        assert response.status_code == 422, (url, response.text)
        [error] = response.json()["detail"]
        assert error["loc"][0] == "body"
        assert isinstance(error["input"], str) and len(error["input"]) <= 120


def test_422_bodies_echo_only_a_short_excerpt(client: TestClient, api_env: ApiEnv) -> None:
    admin = bearer(api_env.keys["admin"])
    long_note = {"note": "y" * 60_000}
    response = client.post("/v1/alerts/1/ack", json=long_note, headers=admin)
    assert response.status_code == 422
    assert len(response.content) < 1024
    [error] = response.json()["detail"]
    assert error["input"].startswith("yyy") and error["input"].endswith("...")
    many = {"replaced_at": [f"not a time {n}" for n in range(3000)]}
    response = client.post(REPLACEMENT, json=many, headers=admin)
    assert response.status_code == 422
    assert len(response.content) < 4096
    unparsable = client.post(
        "/v1/alerts/1/ack",
        content=b'{"note": "' + b"z" * 50_000,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert unparsable.status_code == 422
    assert len(unparsable.content) < 1024
    long_query = client.get("/v1/meters?site=" + "S" * 30_000, headers=admin)
    assert long_query.status_code == 422
    assert len(long_query.content) < 1024


# --- throttling of failed authentications ---------------------------------------


def test_failed_authentications_are_throttled_per_address(api_env: ApiEnv) -> None:
    settings = api_env.settings.model_copy(
        update={"api_auth_failure_burst": 3, "api_auth_failures_per_minute": 6.0}
    )
    app = create_app(settings, api_env.engine)
    admin = bearer(api_env.keys["admin"])
    with TestClient(app, client=("203.0.113.7", 5000)) as attacker:
        assert attacker.get("/v1/meters?site=NCK", headers=admin).status_code == 200
        codes = [
            attacker.get("/v1/meters?site=NCK", headers=bearer(f"pem_guess{n}")).status_code
            for n in range(3)
        ]
        assert codes == [401, 401, 401]
        refused = attacker.get("/v1/meters?site=NCK", headers=bearer("pem_guess3"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        assert "too many failed authentications" in refused.json()["detail"]
        # Blocked before the key is looked at: even the right key waits.
        assert attacker.get("/v1/meters?site=NCK", headers=admin).status_code == 429
    with TestClient(app, client=("198.51.100.2", 5000)) as other:
        assert other.get("/v1/meters?site=NCK", headers=admin).status_code == 200


def test_throttle_refills_at_its_rate() -> None:
    now = [1000.0]
    throttle = AuthThrottle(burst=2, per_minute=30.0, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.retry_after_s("a") == 2
    assert throttle.retry_after_s("b") == 0
    now[0] += 1.0
    assert throttle.retry_after_s("a") == 1
    now[0] += 1.0
    assert throttle.retry_after_s("a") == 0
    throttle.failed("a")
    assert throttle.retry_after_s("a") == 2


def test_throttle_state_stays_bounded() -> None:
    now = [0.0]
    throttle = AuthThrottle(burst=1, per_minute=60.0, max_clients=100, clock=lambda: now[0])
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
        now[0] += 0.01
    assert len(throttle.buckets) <= 100
    assert throttle.retry_after_s("10.0.3.231") == 1  # the latest are still throttled


# --- key strength -----------------------------------------------------------------


@pytest.mark.parametrize(
    "weak", ["a", "secret", "x" * 64, "ab" * 32, "correct horse battery staple"]
)
def test_weak_admin_keys_are_refused_in_production(weak: str) -> None:
    with pytest.raises(ValidationError, match="admin_api_key") as info:
        Settings(environment=Environment.production, admin_api_key=SecretStr(weak))
    assert "SecretStr('**********')" in str(info.value)  # the key itself is never printed
    assert Settings(admin_api_key=SecretStr(weak)).admin_api_key is not None  # dev: allowed


def test_strong_keys_pass_and_created_keys_are_strong() -> None:
    for _ in range(200):
        assert key_weakness(new_token()) is None
    hex_key = "9f86d081884c7d659a2feaa0c55ad015"  # 128 bits as 32 hex characters
    strong = Settings(environment=Environment.production, admin_api_key=SecretStr(hex_key))
    assert strong.admin_api_key is not None


def test_weak_admin_key_stops_the_api_with_the_variable_named() -> None:
    env = {
        **os.environ,
        "EMISSIONS_ENVIRONMENT": "production",
        "EMISSIONS_ADMIN_API_KEY": "a",
        "EMISSIONS_DB_PASSWORD": "irrelevant",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli", "api", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    message = " ".join(done.stderr.split())
    assert done.returncode == 2
    assert "EMISSIONS_ADMIN_API_KEY" in message and "at least 32 characters" in message
    assert "Traceback" not in message


# --- one commit point -------------------------------------------------------------


def test_a_request_commits_on_success_and_rolls_back_on_error(
    client: TestClient, api_env: ApiEnv
) -> None:
    """Authentication refreshes `last_used_at`: committed with a successful request,
    rolled back with a failed one, since the request's connection is the only
    place that commits."""
    with api_env.engine.begin() as conn:
        token = create_key(conn, "commit-probe", Role.operator)

    def last_used() -> object:
        with api_env.engine.connect() as conn:
            return conn.execute(
                text("SELECT last_used_at FROM api_keys WHERE name = 'commit-probe'")
            ).scalar_one()

    assert client.get("/v1/meters/NO-SUCH-METER", headers=bearer(token)).status_code == 404
    assert last_used() is None
    assert client.get("/v1/meters?site=NCK", headers=bearer(token)).status_code == 200
    assert last_used() is not None


def test_no_route_or_helper_commits_on_its_own() -> None:
    api = ROOT / "api"
    commits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in api.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ".commit()" in line
    ]
    assert commits == ["api/deps.py:" + str(_line_of(api / "deps.py", "conn.commit()"))]


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)
