"""core/health.py: the small HTTP endpoint of ingest, the engine and alerts."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from core.health import serve_health


def test_health_answers_and_a_client_leaving_first_leaves_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo's readiness probe reads only the status line and closes; the server
    printed a traceback for every such probe. A real error still prints one."""
    server = serve_health("127.0.0.1", 0, lambda: True, lambda: False)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as reply:
            assert reply.status == 200
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz")
        assert not_ready.value.code == 503
        client = socket.socket()
        for error in (ConnectionResetError(104, "reset by peer"), ValueError("ours")):
            try:
                raise error
            except Exception:
                server.handle_error(client, ("127.0.0.1", 1))
        client.close()
    finally:
        server.shutdown()
    printed = capsys.readouterr().err
    assert "ValueError: ours" in printed
    assert "ConnectionResetError" not in printed
