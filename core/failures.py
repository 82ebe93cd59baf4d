"""Failures that a user fixes outside the code: a setting, a password, a service to start.

They end a command with one line and an exit code instead of a traceback
(`cli.main.main` prints them). Exit codes, as the README documents them:
2 when a setting must change (bad value, wrong password, missing database, port
in use), 1 when something the command needs is unreachable or an operation failed.
"""

from __future__ import annotations

EXIT_UNAVAILABLE = 1
EXIT_CONFIGURATION = 2


class StartupFailure(RuntimeError):
    """Something the command needs is unreachable; waiting did not help."""

    exit_code = EXIT_UNAVAILABLE


class ConfigurationFailure(StartupFailure):
    """Waiting cannot help: the user must change a setting (the message names it)."""

    exit_code = EXIT_CONFIGURATION
