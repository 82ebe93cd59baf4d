"""core/runner.py: a service stops on SIGTERM whichever thread the kernel hands it to."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.kit.broker import free_port
from tests.kit.paths import ROOT

# The loop sends SIGTERM to its own thread (pthread_kill), as the kernel may when a
# process has several threads, and then waits for the stop it asks for. It sends it
# only once the main thread has finished starting the service and entered `wait`:
# a signal during start-up ends the service before its work (a different path).
SERVICE = textwrap.dedent(
    """
    import signal, sys, threading
    from core.runner import HealthPort, Worker, run_service

    waiting = threading.Event()

    def work(stop: threading.Event) -> None:
        waiting.wait()
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        stop.wait()
        print("stopped", flush=True)

    class Probe(Worker):
        def wait(self, stop: threading.Event) -> None:
            waiting.set()
            super().wait(stop)

    run_service("probe", Probe(work), HealthPort("127.0.0.1", int(sys.argv[1]), "test"))
    """
)


def test_a_signal_delivered_to_the_worker_thread_stops_the_service() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVICE, str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # without the fix the process never ends: this fails it
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "stopped"
