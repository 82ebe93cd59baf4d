"""Error bodies that never echo more than a short excerpt of what the client sent.

FastAPI's own validation handler returns every error with the whole offending
input: 50 MB of invalid JSON came back as 52 MB, and an input holding NaN or
Infinity (which Python's json reads, and a strict JSON response cannot write)
turned the 422 into a 500. These render the same shape, bounded and always JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

MAX_ERRORS = 20
MAX_TEXT = 120


def excerpt(value: object, limit: int = MAX_TEXT) -> str:
    """A value as at most `limit` characters of text (JSON where it can be)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=repr, allow_nan=True)[: limit + 1]
        except (ValueError, TypeError, RecursionError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors as FastAPI shapes them (loc, msg, type, input), each field
    cut to an excerpt, at most MAX_ERRORS of them (the last one says how many more)."""
    out: list[dict[str, Any]] = []
    for error in errors[:MAX_ERRORS]:
        item: dict[str, Any] = {
            "loc": [
                part if isinstance(part, int) else excerpt(part, 64)
                for part in error.get("loc", ())[:10]
            ],
            "msg": excerpt(error.get("msg", ""), 300),
            "type": excerpt(error.get("type", "value_error"), 64),
        }
        if "input" in error:
            item["input"] = excerpt(error["input"])
        out.append(item)
    if len(errors) > MAX_ERRORS:
        out.append(
            {"loc": ["body"], "msg": f"{len(errors) - MAX_ERRORS} more errors", "type": "more"}
        )
    return out
