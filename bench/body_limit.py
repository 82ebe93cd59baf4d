"""Request body limit: the API process's memory while a 300 MB body is POSTed.

Starts `uvicorn api.main:app` from a source tree (default: this one; pass an
unpacked older commit with --src to measure before a change), POSTs a 300 MB
JSON body without a key to POST /v1/meters/{id}/replacements twice (declared
Content-Length, then chunked), samples the server's RSS from /proc every 5 ms,
and reports the answer, how much the socket took, the time and the RSS growth.
Any migrated database works: the request never reaches a query. Writes
bench/results/body-limit-<UTC timestamp>.json.

    .venv/bin/python -m bench.body_limit [--src DIR] [--mb 300]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.report import write_results
from bench.stack.processes import RssSampler, wait_http_ok

MB = 1024 * 1024
PATH = b"/v1/meters/NCK-STL1-E-01/replacements"


def push(port: int, total_mb: int, chunked: bool) -> tuple[str, int, float]:
    """(status line, body bytes the socket took, seconds) for one big POST."""
    block = b"[" + b"1," * (MB // 2 - 1) + b"1]"
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (total_mb * MB)
    head = b"POST " + PATH + b" HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
    sent, answer, started = 0, b"", time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head + framing + b"\r\n\r\n")
        for _ in range(total_mb):
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered already
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(block)
        if chunked and sent == total_mb * len(block):
            sock.sendall(b"0\r\n\r\n")
        try:
            while part := sock.recv(65536):
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), sent, time.monotonic() - started


def measure(pid: int, port: int, total_mb: int, chunked: bool) -> dict[str, Any]:
    with RssSampler(pid) as rss:
        status, sent, seconds = push(port, total_mb, chunked)
    return {
        "status": status,
        "socket_took_mb": round(sent / MB, 1),
        "seconds": round(seconds, 2),
        "rss_before_mib": round(rss.before / 1024, 1),
        "rss_growth_mib": round(rss.growth_kib / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT, help="source tree to serve")
    parser.add_argument("--mb", type=int, default=300, help="body size in MiB")
    args = parser.parse_args()
    port = 20_000 + os.getpid() % 10_000
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--no-access-log"],
        cwd=args.src,
        env={**os.environ, "PYTHONPATH": str(args.src.resolve())},
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", lambda: server.poll() is None)
        results = {
            name: measure(server.pid, port, args.mb, chunked)
            for name, chunked in (("content_length", False), ("chunked", True))
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
    report = {
        "benchmark": "body_limit",
        "at": datetime.now(UTC).isoformat(),
        "src": str(args.src.resolve()),
        "body_mb": args.mb,
        "results": results,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(results, indent=2))
    write_results("body-limit", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
