"""Mosquitto password-file hashes computed in Python, so rendering the broker's
files needs no `mosquitto_passwd` binary (the service image does not ship one).

Format `$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`, as written by
`mosquitto_passwd` of Mosquitto 2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101
SALT_BYTES = 12


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    salt = base64.b64decode(salt_b64)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations))
    return hmac.compare_digest(base64.b64encode(digest).decode(), digest_b64)


def new_password() -> str:
    return secrets.token_urlsafe(24)
