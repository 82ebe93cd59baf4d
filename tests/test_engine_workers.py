"""engine/service.py's worker threads: what they return, how one failure ends
them, and the cycle collector's pause counted across overlapping batches."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from engine.service import cyclic_gc_paused, in_threads


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_workers_results_are_summed() -> None:
    assert in_threads([lambda: 2, lambda: 3, lambda: 5]) == 10


def test_a_failing_worker_stops_the_others_and_its_error_is_raised() -> None:
    stop = threading.Event()
    seen_stop: list[bool] = []

    def fails() -> int:
        raise ValueError("broken batch")

    def waits() -> int:
        seen_stop.append(stop.wait(30))
        return 1

    with pytest.raises(ValueError, match="broken batch"):
        in_threads([waits, fails], stop)
    assert seen_stop == [True]


def test_the_collector_stays_off_until_the_last_overlapping_batch_ends(
    collector_on: None,
) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    states: dict[str, bool] = {}

    def first() -> int:
        with cyclic_gc_paused():
            first_in.set()
            second_in.wait(10)
        first_out.set()
        return 0

    def second() -> int:
        first_in.wait(10)
        with cyclic_gc_paused():
            second_in.set()
            first_out.wait(10)
            states["after the first ended"] = gc.isenabled()
        return 0

    in_threads([first, second])
    assert states == {"after the first ended": False}
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off(collector_on: None) -> None:
    gc.disable()
    with cyclic_gc_paused():
        pass
    assert not gc.isenabled()
