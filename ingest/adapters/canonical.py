"""The canonical JSON (SPEC section 3) needs no adapter: `ingest/parse.py` reads it
directly, and every device adapter produces its reading items. Kept as a module so
the protocol table in `ingest/adapters/__init__.py` names all five protocols."""

from __future__ import annotations

from ingest.parse import parse_message

__all__ = ["parse_message"]
