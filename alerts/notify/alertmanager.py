"""Alertmanager v2: `POST {url}/api/v2/alerts` with a list of alerts."""

from __future__ import annotations

import json
from typing import Any

from alerts.notify.webhook import post_json


def post_alerts(base_url: str, alerts: list[dict[str, Any]], timeout_s: float) -> None:
    if not alerts:
        return
    url = base_url.rstrip("/") + "/api/v2/alerts"
    post_json(url, json.dumps(alerts).encode(), {}, timeout_s)
