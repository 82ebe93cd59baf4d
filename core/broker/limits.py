"""The size of one MQTT message, agreed between the broker and ingest.

One number, because the two must fit: ingest quarantines a payload over its limit
(`oversized`, with the raw bytes), which it can only do if the broker let the
packet through. Mosquitto instead drops the connection of a client whose packet is
over `max_packet_size`, and a gateway that republishes it would loop forever.
"""

from __future__ import annotations

# Ingest's default payload limit (EMISSIONS_INGEST_MAX_PAYLOAD_BYTES): a gateway batch
# of 10,000 readings is about 650 KB with the sample park's meter ids, so 1 MiB leaves
# room for ids of up to ~100 bytes a reading.
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
BATCH_READINGS_DOCUMENTED = 10_000

# A PUBLISH packet on top of its payload: fixed header (up to 5 bytes), topic length
# (2) and the longest topic MQTT allows (65,535), packet id (2).
PUBLISH_OVERHEAD_BYTES = 5 + 2 + 65_535 + 2


def broker_packet_limit(max_payload_bytes: int) -> int:
    """The broker's max_packet_size for ingest's payload limit: twice the limit, so
    a payload somewhat over it still reaches ingest and is quarantined as oversized."""
    return 2 * max_payload_bytes + PUBLISH_OVERHEAD_BYTES
