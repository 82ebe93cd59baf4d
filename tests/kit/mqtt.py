"""Test clients logged in to a test broker as one of its users."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from tests.kit.broker import Broker
from tests.mqtt import TestClient, connect


def login(broker: Broker, user: str, **options: Any) -> TestClient:
    """`user` connected with its own password (close it, or `with closing(...)`)."""
    return connect(broker.port, user, broker.password(user), **options)


@contextmanager
def subscribed(broker: Broker, user: str, topic: str, **options: Any) -> Iterator[TestClient]:
    """`user` subscribed to `topic` at QoS 1 once the broker answered the SUBACK, so
    what is published from now on reaches it; disconnected when the block ends."""
    with closing(login(broker, user, **options)) as client:
        client.subscribe([topic])
        yield client


def clear_retained(broker: Broker, user: str, topic: str) -> None:
    """Publish the empty retained message: the broker forgets the retained one an
    earlier test left on `topic`."""
    with closing(login(broker, user)) as client:
        client.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
