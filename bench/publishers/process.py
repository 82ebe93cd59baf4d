"""Publisher processes started together, ready (connected, payloads built), then
released at once, each reporting what it published."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.queues
import multiprocessing.synchronize
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bench.publishers.clients import Clients

Payloads = list[tuple[str, bytes]]  # (topic, payload)


@dataclass(frozen=True)
class PublishReport:
    user: str
    first_publish: float
    last_publish: float
    all_acked: float
    messages: int
    readings: int
    max_lag_s: float  # paced runs: worst delay behind the schedule
    probes: tuple[tuple[float, int], ...] = ()  # (wall time just before publish, ts in us)


class Workload(Protocol):
    """What one publisher process publishes (a frozen dataclass: it is pickled)."""

    @property
    def port(self) -> int: ...

    @property
    def name(self) -> str: ...

    def users(self) -> list[tuple[str, str]]:
        """(user, password) of every gateway it publishes as."""
        ...

    def prepare(self) -> Payloads | None:
        """Work done before the start signal (e.g. payloads built ahead)."""
        ...

    def publish(self, clients: Clients, prepared: Payloads | None) -> PublishReport: ...


def _run(
    job: Workload, ready: multiprocessing.synchronize.Event, go: multiprocessing.synchronize.Event
) -> PublishReport:
    clients = Clients(job.users())
    try:
        clients.connect(job.port)
        prepared = job.prepare()
        ready.set()
        clients.wait_go(go)
        return job.publish(clients, prepared)
    finally:
        clients.close()


def publisher_main(
    job: Workload,
    ready: multiprocessing.synchronize.Event,
    go: multiprocessing.synchronize.Event,
    out: multiprocessing.queues.Queue[PublishReport | str],
) -> None:
    """Entry point of a publisher process; reports or an error string go to `out`."""
    try:
        out.put(_run(job, ready, go))
    except BaseException as exc:  # Ctrl-C included: the parent must hear of it
        out.put(f"publisher {job.name}: {type(exc).__name__}: {exc}")
    finally:
        ready.set()


class PublisherGroup:
    """Publisher processes started together, ready (connected, payloads built), then
    released at once by `go`."""

    def __init__(self, jobs: Sequence[Workload]) -> None:
        ctx = mp.get_context("spawn")
        self._jobs = list(jobs)
        self._go = ctx.Event()
        self._out: multiprocessing.queues.Queue[PublishReport | str] = ctx.Queue()
        self._ready = [ctx.Event() for _ in jobs]
        self._procs = [
            ctx.Process(
                target=publisher_main,
                args=(job, ready, self._go, self._out),
                name=f"publisher-{job.name}",
                daemon=True,
            )
            for job, ready in zip(jobs, self._ready, strict=True)
        ]

    def __enter__(self) -> PublisherGroup:
        try:
            for proc in self._procs:
                proc.start()
            for ready in self._ready:
                if not ready.wait(120):
                    raise TimeoutError("publisher did not get ready")
            with contextlib.suppress(queue.Empty):  # an error before the start signal
                early = self._out.get(timeout=0.2)
                raise RuntimeError(str(early))
        except BaseException:
            self.__exit__()
            raise
        return self

    def go(self) -> float:
        started = time.time()
        self._go.set()
        return started

    def results(self, timeout: float) -> list[PublishReport]:
        reports = []
        deadline = time.monotonic() + timeout
        for _ in self._jobs:
            item = self._out.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(item, str):
                raise RuntimeError(item)
            reports.append(item)
        return reports

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.join(2 if proc.is_alive() else 0)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        self._out.close()
