"""Where the project keeps local state (database files, broker data, generated secrets).

Kept outside the repository so that secrets never land in a commit. The shell
scripts compute the same default (`scripts/lib.sh`); keep the two in step.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def default_state_dir() -> Path:
    """Root owns a system-wide directory because PostgreSQL runs as `postgres` and
    cannot enter /root; other users keep state under their home."""
    explicit = os.environ.get("EMISSIONS_STATE_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/park-emissions")
    return Path.home() / ".local" / "state" / "park-emissions"


def secrets_dir(state_dir: Path) -> Path:
    return state_dir / "secrets"


def mqtt_password_file(state_dir: Path, username: str) -> Path:
    return secrets_dir(state_dir) / "mqtt" / username


def generated_secret(path: Path) -> str:
    """A random secret generated into `path`, or the one already there. Written
    aside, then linked into place: a second process generating at the same moment
    reads the winner's complete file, never a half-written one, so both agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_hex(32) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process won the race; use its secret
    finally:
        draft.unlink()
    return path.read_text(encoding="utf-8").strip()
