"""A tiny HTTP endpoint per background component: /healthz (liveness), /readyz
(readiness, where a component has a meaning for it) and /metrics.

Ingest, engine and alerts are not web services; this gives them what an
orchestrator and Prometheus expect without pulling a web framework into them.
"""

from __future__ import annotations

import errno
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.failures import ConfigurationFailure


class _HealthServer(ThreadingHTTPServer):
    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """A client that left first (a probe reading only the status line, a
        scrape cut short) is not an error of ours: no traceback in the log."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve_health(
    host: str,
    port: int,
    is_alive: Callable[[], bool],
    is_ready: Callable[[], bool] | None = None,
    *,
    setting: str = "--health-port",
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; port 0 picks a free port (see server_address).

    Without `is_ready`, /readyz answers like /healthz. `setting` names the variable
    or option that chose the port, for the one-line error when another process
    holds it."""
    ready = is_ready or is_alive

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = is_alive()
                body = b'{"status": "ok"}' if ok else b'{"status": "unhealthy"}'
                self._send(200 if ok else 503, body, "application/json")
            elif self.path == "/readyz":
                ok = ready()
                body = b'{"status": "ready"}' if ok else b'{"status": "not ready"}'
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b'{"detail": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds would drown the structured logs."""

    try:
        server = _HealthServer((host, port), Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationFailure(
                f"health/metrics port {host}:{port} is already in use (another instance "
                f"running?); stop it or choose another port with {setting}"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigurationFailure(
                f"cannot listen on {host}:{port}: no such local address; "
                "check EMISSIONS_METRICS_HOST"
            ) from None
        raise
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
