"""Where in a validated document a mistake is, written the way a user reads it.

The park file's issues and the settings' errors both name the exact place of a
mistake; they share this so the two read alike, and so the settings' error path
needs nothing from the park file's loader.
"""

from __future__ import annotations


def format_location(loc: tuple[int | str, ...]) -> str:
    """('sites', 0, 'enterprises', 2, 'unit') -> 'sites[0].enterprises[2].unit'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
