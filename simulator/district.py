"""Generated parks for scale: a site of many small enterprises, one gateway each.

A district simulation (issue 13) needs thousands of gateways, each with its own
broker user, which the park file and `emissions broker render` then provide like
any other; the meters are plain electricity counters.
"""

from __future__ import annotations

from core.park.loader import parse_park
from core.park.models import Park


def with_generated_site(
    park: Park, site_id: str, gateways: int, meters_per_gateway: int = 1
) -> Park:
    """`park` plus a site of `gateways` enterprises (`{site}-E00001` ...), each with
    its own gateway and `meters_per_gateway` meters (`{enterprise}-M1` ...)."""
    data = park.model_dump(mode="json")
    width = max(5, len(str(gateways)))
    data["sites"].append(
        {
            "id": site_id,
            "name": f"Generated district of {gateways} enterprises",
            "timezone": "Asia/Ho_Chi_Minh",
            "enterprises": [
                {
                    "id": f"{site_id}-E{n:0{width}d}",
                    "name": f"Generated tenant {n}",
                    "industry": "garments",
                    "meters": [
                        {
                            "id": f"{site_id}-E{n:0{width}d}-M{m}",
                            "kind": "electricity",
                            "unit": "kWh",
                            "reading": "counter",
                            "commissioned_at": "2020-01-01T00:00:00+07:00",
                        }
                        for m in range(1, meters_per_gateway + 1)
                    ],
                }
                for n in range(1, gateways + 1)
            ],
        }
    )
    return parse_park(data)
