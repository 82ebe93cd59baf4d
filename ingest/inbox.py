"""The hand-off from the MQTT thread to the writer thread, a batch at a time.

Measured (bench.ingest draining single readings, py-spy): with a `queue.Queue`
the writer took messages one `get` at a time, so while it kept up every `put`
woke it: a futex wake-up and a GIL hand-over per message, which cost the MQTT
thread about as much as parsing the message. Here the MQTT thread appends under a
plain lock and wakes the writer only when a batch starts and when it is full; in
between the writer sleeps until the batch's deadline. Bounded: a full inbox
blocks the MQTT thread, so a slow store leaves the backlog at the broker.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from dataclasses import dataclass

from ingest.writer import Message


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_readings: int = 5000
    max_messages: int = 10_000
    deadline_s: float = 0.2


# What the writer waits for, so `put` wakes it only then.
_NOTHING, _FIRST, _FULL = 0, 1, 2


class Inbox:
    def __init__(self, policy: BatchPolicy) -> None:
        self._policy = policy
        self._capacity = 2 * policy.max_messages
        self._items: list[Message] = []
        # Readings put since the start, through each message in `_items`, and taken
        # since the start: a batch is cut by bisection, not by counting message by message.
        self._ends: list[int] = []
        self._total = 0
        self._taken_total = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # the writer waits here
        self._taken = threading.Condition(self._lock)  # a blocked `put` waits here
        self._waiting_for = _NOTHING

    def put(self, message: Message) -> None:
        """Called by the MQTT thread; blocks while the inbox is full."""
        with self._lock:
            while len(self._items) >= self._capacity:
                self._taken.wait()
            self._items.append(message)
            self._total += len(message.parsed.readings)
            self._ends.append(self._total)
            if self._waiting_for == _FIRST or (self._waiting_for == _FULL and self._full()):
                self._waiting_for = _NOTHING
                self._arrived.notify()

    def take(self, idle_s: float = 0.5) -> list[Message]:
        """The next batch: from its first message, until it holds `max_readings` or
        `max_messages` or its deadline passed; empty after `idle_s` without any."""
        with self._lock:
            if not self._items:
                self._waiting_for = _FIRST
                self._arrived.wait(idle_s)
                self._waiting_for = _NOTHING
                if not self._items:
                    return []
            deadline = time.monotonic() + self._policy.deadline_s
            while not self._full():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._waiting_for = _FULL
                self._arrived.wait(remaining)
            self._waiting_for = _NOTHING
            batch = self._cut()
            self._taken.notify_all()
            return batch

    def empty(self) -> bool:
        return not self._items

    def size(self) -> int:
        return len(self._items)

    def _full(self) -> bool:
        policy = self._policy
        return (
            self._total - self._taken_total >= policy.max_readings
            or len(self._items) >= policy.max_messages
        )

    def _cut(self) -> list[Message]:
        """The batch off the front: messages until `max_readings` is reached (the one
        that reaches it included) or `max_messages` of them."""
        reaching = bisect_left(self._ends, self._taken_total + self._policy.max_readings)
        count = min(reaching + 1, len(self._items), self._policy.max_messages)
        batch = self._items[:count]
        self._taken_total = self._ends[count - 1]
        del self._items[:count], self._ends[:count]
        return batch
