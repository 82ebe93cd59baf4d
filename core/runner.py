"""How every long-running service runs: signals, health server, start, wait, stop.

Ingest, the engine and the alert service each used to wire this by hand, three
near-copies that had started to differ in what a stop during start-up does. One
runner owns it: SIGTERM and SIGINT set the stop event (and, while the service is
still starting, e.g. waiting for the broker's first login, end that wait at once);
/healthz and /readyz answer from the service; the health server stops with it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.health import serve_health
from core.logs import get_logger
from core.settings import Settings


@dataclass(frozen=True, slots=True)
class HealthPort:
    """Where /healthz and /metrics listen and which setting chose the port (named in
    the error when another process holds it)."""

    host: str
    port: int
    setting: str

    @classmethod
    def chosen(cls, settings: Settings, component: str, option: int | None) -> HealthPort:
        """The --health-port option if given, else the component's setting
        (`<component>_health_port`, EMISSIONS_<COMPONENT>_HEALTH_PORT)."""
        if option is not None:
            return cls(settings.metrics_host, option, "--health-port")
        name = f"{component}_health_port"
        return cls(settings.metrics_host, int(getattr(settings, name)), f"EMISSIONS_{name.upper()}")


class Service(Protocol):
    def alive(self) -> bool: ...

    def ready(self) -> bool: ...

    def start(self, stop: threading.Event) -> None:
        """May block (the first broker login); undoes its own partial start if it fails."""

    def wait(self, stop: threading.Event) -> None:
        """Returns when the service should stop: `stop` was set, or its work ended."""

    def stop(self) -> None: ...


def wait_awake(stop: threading.Event) -> bool:
    """`stop.wait` for at most half a second: whether it is set. The main thread
    must not block without a timeout: the kernel may hand SIGTERM to any thread,
    and Python runs the handler only when the main thread next runs bytecode, so a
    main thread in an untimed join or wait kept a busy engine running after the
    demo stopped it."""
    return stop.wait(0.5)


class Worker:
    """A service that is one loop, `work(stop)`, on a daemon thread: it is alive while
    the loop runs and ends when the loop returns."""

    def __init__(self, work: Callable[[threading.Event], None]) -> None:
        self._work = work
        self._thread: threading.Thread | None = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ready(self) -> bool:
        return self.alive()

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._work, args=(stop,), daemon=True)
        self._thread.start()

    def wait(self, stop: threading.Event) -> None:
        while self.alive() and not wait_awake(stop):
            pass
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        """The loop has returned by the time `wait` does: nothing is left to stop."""


def on_stop_signals(stop: threading.Event, then: Callable[[], None] | None = None) -> None:
    """SIGTERM and SIGINT set `stop`; `then` runs after the first of them (it may raise).

    A handler runs in the main thread between two bytecodes, possibly in the middle
    of `stop.set()` called by the handler of an earlier signal, which holds the
    event's lock: a second `set()` there waits for that lock forever (the demo's
    Ctrl-C followed by its SIGTERM hung the alert service so). So a plain flag, set
    before anything else, makes every later signal return at once."""
    signalled = False

    def handler(*_: object) -> None:
        nonlocal signalled
        if signalled:
            return
        signalled = True
        stop.set()
        if then is not None:
            then()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class _StoppedWhileStarting(Exception):
    """SIGTERM or SIGINT arrived before the service finished starting."""


def run_service(name: str, service: Service, health: HealthPort) -> None:
    """Run `service` until SIGTERM or SIGINT, or until its work ends."""
    stop = threading.Event()
    starting = threading.Event()
    starting.set()

    def raise_if_starting() -> None:
        if starting.is_set():
            raise _StoppedWhileStarting

    on_stop_signals(stop, raise_if_starting)
    server = serve_health(
        health.host, health.port, service.alive, service.ready, setting=health.setting
    )
    try:
        try:
            service.start(stop)
            starting.clear()
        except _StoppedWhileStarting:
            get_logger(name).info(f"{name}_stopped_while_starting")
            return
        service.wait(stop)
        service.stop()
    finally:
        server.shutdown()
