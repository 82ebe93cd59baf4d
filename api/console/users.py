"""Console users: argon2id password hashes (argon2-cffi), one role each, as API keys.

A user's principal is named `user:<username>`, so an acknowledgement or a replacement
made in the console says who did it without being mistaken for an API key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, text

from api.auth import Principal, Role

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
LOCALES = ("vi", "en")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


@cache
def dummy_hash() -> str:
    """The hash a sign-in verifies against when the user is unknown, so the response
    time does not tell which usernames exist. Made once, by the API at start-up
    (`api/console/app.py`), not at import: hashing takes a tenth of a second, which
    every command importing this module paid."""
    return _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    enterprise_id: str | None
    locale: str

    @property
    def principal(self) -> Principal:
        return Principal(f"user:{self.username}", self.role, self.enterprise_id)


@dataclass(frozen=True)
class UserInfo:
    username: str
    role: str
    enterprise_id: str | None
    locale: str
    created_at: datetime
    disabled_at: datetime | None


_SELECT = "SELECT id, username, role, enterprise_id, locale FROM console_users "


def _user(row: object) -> User:
    return User(
        int(row.id),  # type: ignore[attr-defined]
        str(row.username),  # type: ignore[attr-defined]
        Role(row.role),  # type: ignore[attr-defined]
        row.enterprise_id,  # type: ignore[attr-defined]
        str(row.locale),  # type: ignore[attr-defined]
    )


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: Role,
    enterprise_id: str | None = None,
    locale: str = "vi",
) -> User:
    if not USERNAME.match(username):
        raise UserError("a username is 1 to 64 of A-Z a-z 0-9 _ . @ -")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if (role is Role.tenant) != (enterprise_id is not None):
        raise UserError("a tenant user needs --enterprise; other roles take none")
    if locale not in LOCALES:
        raise UserError(f"language must be one of {', '.join(LOCALES)}")
    if enterprise_id is not None and (
        conn.execute(text("SELECT 1 FROM enterprises WHERE id = :e"), {"e": enterprise_id}).first()
        is None
    ):
        raise UserError(f"unknown enterprise {enterprise_id!r}")
    if conn.execute(
        text("SELECT 1 FROM console_users WHERE username = :u"), {"u": username}
    ).first():
        raise UserError(f"a user named {username!r} exists already")
    row = conn.execute(
        text(
            "INSERT INTO console_users (username, password_hash, role, enterprise_id, locale) "
            "VALUES (:u, :h, :r, :e, :l) RETURNING id, username, role, enterprise_id, locale"
        ),
        {
            "u": username,
            "h": _hasher.hash(password),
            "r": role.value,
            "e": enterprise_id,
            "l": locale,
        },
    ).one()
    return _user(row)


def authenticate_user(conn: Connection, username: str, password: str) -> User | None:
    """The active user with this password, or None; rehashes when argon2's
    parameters have grown since the hash was made."""
    row = conn.execute(
        text(
            "SELECT id, username, role, enterprise_id, locale, password_hash FROM console_users "
            "WHERE username = :u AND disabled_at IS NULL"
        ),
        {"u": username},
    ).first()
    try:
        _hasher.verify(row.password_hash if row else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(
            text("UPDATE console_users SET password_hash = :h WHERE id = :id"),
            {"h": _hasher.hash(password), "id": row.id},
        )
    return _user(row)


def active_user(conn: Connection, user_id: int) -> User | None:
    """The user of a session, if still active: disabling a user ends its sessions."""
    row = conn.execute(
        text(_SELECT + "WHERE id = :id AND disabled_at IS NULL"), {"id": user_id}
    ).first()
    return None if row is None else _user(row)


def set_locale(conn: Connection, user_id: int, locale: str) -> None:
    if locale not in LOCALES:
        raise UserError(f"language must be one of {', '.join(LOCALES)}")
    conn.execute(
        text("UPDATE console_users SET locale = :l WHERE id = :id"), {"l": locale, "id": user_id}
    )


def list_users(conn: Connection) -> list[UserInfo]:
    rows = conn.execute(
        text(
            "SELECT username, role, enterprise_id, locale, created_at, disabled_at "
            "FROM console_users ORDER BY created_at, username"
        )
    )
    return [UserInfo(**r._mapping) for r in rows]


def disable_user(conn: Connection, username: str) -> bool:
    """False when no active user has that name."""
    result = conn.execute(
        text(
            "UPDATE console_users SET disabled_at = now() "
            "WHERE username = :u AND disabled_at IS NULL"
        ),
        {"u": username},
    )
    return bool(result.rowcount)
