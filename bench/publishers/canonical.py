"""The canonical JSON payloads (SPEC section 3) and the gateways that may publish them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.park.models import Park

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us_to_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def us_to_iso(us: int) -> str:
    return us_to_dt(us).isoformat(timespec="microseconds")


def now_us() -> int:
    return time.time_ns() // 1000


def single_payload(ts: str, value: float, unit: str) -> str:
    """A single reading, for parks/<site>/meters/<meter>."""
    return f'{{"ts": "{ts}", "value": {value!r}, "unit": "{unit}"}}'


def batch_item(meter: str, us: int, value: float, unit: str) -> str:
    """One reading of a gateway batch, its time in Unix seconds to the microsecond."""
    return (
        f'{{"meter": "{meter}", "ts": {us // 1_000_000}.{us % 1_000_000:06d}, '
        f'"value": {value!r}, "unit": "{unit}"}}'
    )


def batch_payload(items: list[str]) -> bytes:
    """A gateway batch, for parks/<site>/gateways/<gateway>."""
    return ('{"readings": [' + ", ".join(items) + "]}").encode()


@dataclass(frozen=True)
class Gateway:
    id: str
    site: str
    meters: tuple[tuple[str, str], ...]  # (meter id, unit)

    def with_unit(self, unit: str) -> Gateway:
        return Gateway(self.id, self.site, tuple(m for m in self.meters if m[1] == unit))


def park_gateways(park: Park) -> list[Gateway]:
    return [
        Gateway(ent.gateway_id, site.id, tuple((m.id, str(m.unit)) for m in ent.meters))
        for site in park.sites
        for ent in site.enterprises
        if ent.meters
    ]
