"""What a simulated gateway publishes, reading by reading, with what the ingestor must
do with each (`expect`): the gateways build these, the device protocols reshape them
and the ledger checks the store against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PENDING = "pending"


@dataclass(slots=True)
class Item:
    meter: str
    ts: int | str
    value: float
    expect: str = PENDING
    reason: str | None = None
    fault: str | None = None


@dataclass(slots=True)
class Message:
    seq: int
    gateway: str
    topic: str
    due: int  # simulated time to publish at
    items: list[Item]
    fault: str | None = None
    reason: str | None = None  # the whole message is quarantined for this
    original: Message | None = None  # the message this one repeats
    extra: dict[str, object] = field(default_factory=dict)
    payload: bytes = b""
