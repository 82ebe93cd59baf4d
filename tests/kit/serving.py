"""Something serving HTTP for the length of a block: ready once its URL answers."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx


def wait_ready(url: str, alive: Callable[[], bool], timeout: float = 30) -> None:
    """Poll `url` until it answers 200; fail at once if what should serve it died,
    rather than wait out the timeout."""
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


@contextmanager
def running_process(argv: Sequence[str], **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` in its own process for the block, terminated (and waited for) at its end."""
    proc = subprocess.Popen(list(argv), **popen)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def serving_process(
    argv: Sequence[str], ready_url: str, timeout: float = 30, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` in its own process, ready when `ready_url` answers."""
    with running_process(argv, **popen) as proc:
        wait_ready(ready_url, lambda: proc.poll() is None, timeout)
        yield proc
