"""A real Mosquitto run with the project's rendered configuration, and free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.broker.render import render_broker
from core.park.models import Park
from core.paths import mqtt_password_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Broker:
    """A real Mosquitto process run with the project's rendered configuration."""

    port: int
    state_dir: Path
    config_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    prefix: str = "parks"

    def password(self, user: str) -> str:
        return mqtt_password_file(self.state_dir, user).read_text().strip()

    def start(self) -> None:
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([mosquitto, "-c", str(self.config_dir / "mosquitto.conf")])
        _wait_for_port(self.port)

    def stop(self) -> None:
        """Graceful stop: the broker saves its persistent sessions to disk."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def kill9(self) -> None:
        """A crash: nothing saved since the last autosave survives."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def log(self) -> str:
        return (self.config_dir / "mosquitto.log").read_text(errors="replace")


def start_broker(park: Park) -> Broker:
    """Its directory is outside pytest's private tmp tree: a broker started as root
    drops to the `mosquitto` user, which must be able to reach its files."""
    base = Path(tempfile.mkdtemp(prefix="emissions-broker-"))
    os.chmod(base, 0o755)
    broker = Broker(free_port(), base / "state", base / "mosquitto")
    render_broker(
        park,
        broker.config_dir,
        state_dir=broker.state_dir,
        prefix="parks",
        bind="127.0.0.1",
        port=broker.port,
    )
    broker.start()
    return broker


@contextmanager
def running_broker(park: Park) -> Iterator[Broker]:
    """A broker of its own for the block: tests that crash or restart it, or read its
    log, cannot disturb the shared one; its files go with it."""
    broker = start_broker(park)
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.config_dir.parent, ignore_errors=True)
