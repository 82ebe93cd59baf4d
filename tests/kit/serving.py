"""Something serving HTTP for the length of a block: ready once its URL answers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bench.stack.processes import wait_http_ok


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
        wait_http_ok(ready_url, lambda: proc.poll() is None, timeout)
        yield proc
