"""The writer thread's side of ingest without a store: how the inbox cuts batches
(ingest/inbox.py) and which meter-hours a batch marks dirty (ingest/writer.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingest.inbox import BatchPolicy, Inbox
from ingest.parse import Parsed, Reading
from ingest.writer import Message, earliest_by_hour

T0 = datetime(2025, 1, 11, 6, 59, tzinfo=UTC)


def message(n: int, readings: int = 1) -> Message:
    parsed = Parsed("NCK", [Reading("NCK-E-001", T0, float(i)) for i in range(readings)])
    return Message(f"parks/NCK/meters/{n}", b"{}", parsed, n)


def test_a_batch_ends_at_the_message_that_reaches_max_readings() -> None:
    inbox = Inbox(BatchPolicy(max_readings=100, max_messages=1000, deadline_s=60))
    for n in range(5):
        inbox.put(message(n, readings=40))
    assert [m.ack for m in inbox.take()] == [0, 1, 2]  # 120 readings: the third reached 100
    assert inbox.size() == 2
    inbox.put(message(5, readings=40))
    inbox.put(message(6, readings=40))
    assert [m.ack for m in inbox.take()] == [3, 4, 5]


def test_a_batch_ends_at_max_messages_even_without_readings() -> None:
    inbox = Inbox(BatchPolicy(max_readings=100, max_messages=3, deadline_s=0))
    for n in range(4):
        inbox.put(message(n, readings=0))
    assert [m.ack for m in inbox.take()] == [0, 1, 2]
    assert [m.ack for m in inbox.take()] == [3]  # the deadline ends a partial batch


def test_an_idle_inbox_gives_an_empty_batch() -> None:
    assert Inbox(BatchPolicy()).take(idle_s=0) == []


def test_a_full_inbox_blocks_the_producer_until_the_writer_takes() -> None:
    inbox = Inbox(BatchPolicy(max_readings=10, max_messages=2, deadline_s=60))
    for n in range(4):  # capacity: twice max_messages
        inbox.put(message(n))
    put_done = threading.Event()

    def producer() -> None:
        inbox.put(message(4))
        put_done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert not put_done.is_set()
    assert [m.ack for m in inbox.take()] == [0, 1]
    thread.join()
    assert put_done.is_set()
    assert inbox.size() == 3


def test_a_message_from_another_thread_wakes_the_waiting_writer() -> None:
    inbox = Inbox(BatchPolicy(max_readings=2, max_messages=10, deadline_s=600))
    taken: list[Message] = []
    thread = threading.Thread(target=lambda: taken.extend(inbox.take(idle_s=600)))
    thread.start()
    inbox.put(message(0))
    inbox.put(message(1))  # the batch is full: no waiting for its 600 s deadline
    thread.join()
    assert [m.ack for m in taken] == [0, 1]


@given(st.integers(1, 6), st.integers(1, 5), st.lists(st.integers(0, 4), max_size=10))
def test_batches_are_cut_as_the_policy_says(
    max_readings: int, max_messages: int, sizes: list[int]
) -> None:
    """Each batch takes messages while it holds fewer than `max_readings` readings
    and fewer than `max_messages` messages."""
    sizes = sizes[: 2 * max_messages]  # what fits without blocking
    inbox = Inbox(BatchPolicy(max_readings, max_messages, deadline_s=0))
    for n, size in enumerate(sizes):
        inbox.put(message(n, size))
    expected: list[list[int]] = []
    pending = list(enumerate(sizes))
    while pending:
        batch: list[int] = []
        readings = 0
        while pending and readings < max_readings and len(batch) < max_messages:
            n, size = pending.pop(0)
            batch.append(n)
            readings += size
        expected.append(batch)
    got = []
    while not inbox.empty():
        got.append([m.ack for m in inbox.take()])
    assert got == expected


def brute_force(keys: list[tuple[str, datetime]]) -> dict[tuple[str, int], datetime]:
    out: dict[tuple[str, int], datetime] = {}
    for meter, ts in keys:
        key = (meter, int(ts.timestamp() // 3600))
        out[key] = min(ts, out.get(key, ts))
    return out


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(-200_000, 200_000)),
        max_size=60,
    )
)
def test_the_marks_are_the_earliest_reading_of_every_meter_hour(
    raw: list[tuple[str, int]],
) -> None:
    keys = [(meter, T0 + timedelta(seconds=s / 10)) for meter, s in raw]
    assert earliest_by_hour(keys) == brute_force(keys)
