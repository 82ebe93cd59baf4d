"""Where the project keeps local state (database files, broker data, generated secrets).

Kept outside the repository so that secrets never land in a commit. The shell
scripts compute the same default (`scripts/lib.sh`); keep the two in step.
"""

from __future__ import annotations

import os
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
