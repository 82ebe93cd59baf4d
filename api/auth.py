"""API keys: random 256-bit tokens, stored as SHA-256 digests, one role each.

A token is shown once, at creation. Its digest is the only thing stored; since the
token has 256 bits of entropy, a fast hash is safe (no dictionary to try). The
role and, for tenants, the enterprise come from the stored key, never from the
request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, text

TOKEN_PREFIX = "pem_"  # noqa: S105 - a label, not a secret
ENV_ADMIN_NAME = "env-admin"


class Role(StrEnum):
    admin = "admin"
    operator = "operator"  # every site, read only
    tenant = "tenant"  # one enterprise, read only


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    enterprise_id: str | None = None

    @property
    def is_tenant(self) -> bool:
        return self.role is Role.tenant


@dataclass(frozen=True)
class KeyInfo:
    name: str
    role: str
    enterprise_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyError_(ValueError):
    """A key cannot be created or revoked as asked; the message says why."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(conn: Connection, token: str, admin_token: str | None) -> Principal | None:
    """The principal of a presented token, or None (unknown or revoked).

    `last_used_at` is refreshed at most once a minute, so authentication stays a
    single indexed read on the hot path; the refresh commits with the request (the
    API's one commit point, `api.deps.get_conn`), so a failed request leaves it."""
    if admin_token and hmac.compare_digest(digest(token), digest(admin_token)):
        return Principal(ENV_ADMIN_NAME, Role.admin)
    row = conn.execute(
        text(
            "SELECT id, name, role, enterprise_id, revoked_at IS NOT NULL AS revoked, "
            "last_used_at IS NULL OR last_used_at < now() - interval '1 minute' AS stale "
            "FROM api_keys WHERE key_hash = :h"
        ),
        {"h": digest(token)},
    ).first()
    if row is None or row.revoked:
        return None
    if row.stale:
        conn.execute(
            text("UPDATE api_keys SET last_used_at = now() WHERE id = :id"), {"id": row.id}
        )
    return Principal(str(row.name), Role(row.role), row.enterprise_id)


def create_key(conn: Connection, name: str, role: Role, enterprise_id: str | None = None) -> str:
    """Store a new key and return its token (the only time it is visible)."""
    if (role is Role.tenant) != (enterprise_id is not None):
        raise KeyError_("a tenant key needs --enterprise; other roles take none")
    if name == ENV_ADMIN_NAME:
        raise KeyError_(f"{ENV_ADMIN_NAME!r} is reserved for EMISSIONS_ADMIN_API_KEY")
    if enterprise_id is not None and (
        conn.execute(text("SELECT 1 FROM enterprises WHERE id = :e"), {"e": enterprise_id}).first()
        is None
    ):
        raise KeyError_(f"unknown enterprise {enterprise_id!r}")
    if conn.execute(text("SELECT 1 FROM api_keys WHERE name = :n"), {"n": name}).first():
        raise KeyError_(f"a key named {name!r} exists already")
    token = new_token()
    conn.execute(
        text("INSERT INTO api_keys (name, key_hash, role, enterprise_id) VALUES (:n, :h, :r, :e)"),
        {"n": name, "h": digest(token), "r": role.value, "e": enterprise_id},
    )
    return token


def list_keys(conn: Connection) -> list[KeyInfo]:
    rows = conn.execute(
        text(
            "SELECT name, role, enterprise_id, created_at, last_used_at, revoked_at "
            "FROM api_keys ORDER BY created_at, name"
        )
    )
    return [KeyInfo(**r._mapping) for r in rows]


def revoke_key(conn: Connection, name: str) -> bool:
    """Revoke by name; False when no active key has that name."""
    result = conn.execute(
        text("UPDATE api_keys SET revoked_at = now() WHERE name = :n AND revoked_at IS NULL"),
        {"n": name},
    )
    return bool(result.rowcount)
