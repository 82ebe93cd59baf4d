"""Signed webhook POSTs.

The body is JSON; `X-Emissions-Signature: sha256=<hex>` is HMAC-SHA256 of the exact
body bytes with the shared secret, `X-Emissions-Delivery` the id receivers
de-duplicate on (a delivery that timed out after the receiver accepted it is sent
again). The secret comes from EMISSIONS_ALERTS_WEBHOOK_SECRET or the state file
secrets/alerts_webhook_secret, never from the park file.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
from pathlib import Path

from alerts.notify import DeliveryError
from core.paths import generated_secret, secrets_dir
from core.settings import Environment, Settings

SIGNATURE_HEADER = "X-Emissions-Signature"
DELIVERY_HEADER = "X-Emissions-Delivery"


def secret_file(settings: Settings) -> Path:
    return secrets_dir(settings.state_dir) / "alerts_webhook_secret"


def webhook_secret(settings: Settings) -> bytes:
    """The signing secret, looked up when a webhook is first delivered (a park
    without webhooks needs none). In development one is generated into the state
    directory; in production a missing secret fails the delivery, with the reason
    recorded on it and, in the end, a dead letter."""
    if settings.alerts_webhook_secret is not None:
        return settings.alerts_webhook_secret.get_secret_value().encode()
    path = secret_file(settings)
    if path.exists():
        return path.read_text(encoding="utf-8").strip().encode()
    if settings.environment is Environment.production:
        raise DeliveryError(f"no webhook secret: set EMISSIONS_ALERTS_WEBHOOK_SECRET or {path}")
    try:
        return generated_secret(path).encode()
    except OSError as exc:
        raise DeliveryError(f"no webhook secret and cannot create {path}: {exc}") from exc


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """For receivers (and tests): constant-time comparison."""
    return hmac.compare_digest(sign(secret, body), signature)


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """POST; any non-2xx answer, refused connection or timeout is a DeliveryError."""
    if not url.startswith(("http://", "https://")):
        raise DeliveryError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} from {url}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__} for {url}: {exc}") from exc


def post_webhook(url: str, body: bytes, secret: bytes, delivery: int, timeout_s: float) -> None:
    headers = {SIGNATURE_HEADER: sign(secret, body), DELIVERY_HEADER: str(delivery)}
    post_json(url, body, headers, timeout_s)
