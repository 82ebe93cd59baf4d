"""Local processes and ports: what every service the benchmarks start needs."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_http_ok(url: str, alive: Callable[[], bool], timeout: float = 30.0) -> None:
    """Until `url` answers 200: an HTTP server is up once it answers, not once it
    listens. Fails at once if what should serve it died, rather than wait out the
    timeout (the tests' kit waits with this too)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline or not alive():
                raise
        else:
            assert time.monotonic() <= deadline, f"{url} never answered 200"
        time.sleep(0.05)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, `VmHWM`) from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


class RssSampler:
    """Samples a process's RSS every 5 ms while the `with` block runs: a short peak
    that a reading before and after would miss is what a body limit must prevent."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_kib(pid)
        self.samples = [self.before]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler")

    def _sample(self) -> None:
        while not self._done.is_set():
            self.samples.append(rss_kib(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_kib(self) -> int:
        return max(self.samples) - self.before
