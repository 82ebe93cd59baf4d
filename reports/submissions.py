"""Frozen submissions: a content hash chained per enterprise, and what a later
recomputation changed, line by line. Pure.

hash = sha256(previous hash + canonical JSON of the document), the canonical JSON
being sorted keys, no spaces, UTF-8: anyone holding the documents in order can
recompute the chain with any JSON library. `generated_at` is when, not what: it is
left out of the comparison, not of the hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

# Differences below this relative size are float summation noise, not restatements.
REL_TOLERANCE = 1e-9
IGNORED = frozenset({"generated_at"})


def canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def content_hash(document: str, previous: str | None) -> str:
    """Hash of a canonical document (as stored) chained to its predecessor's hash."""
    return hashlib.sha256((previous or "").encode() + document.encode()).hexdigest()


class ChainCheck(BaseModel):
    valid: bool
    length: int
    broken_at: int | None  # id of the first submission that does not verify
    reason: str | None


def verify_chain(rows: Iterable[Mapping[str, Any]]) -> ChainCheck:
    """Rows of one chain, oldest first: each links to its predecessor and its hash
    is the hash of its stored canonical document."""
    previous: str | None = None
    n = 0
    for n, row in enumerate(rows, start=1):
        if row["previous_hash"] != previous:
            return ChainCheck(valid=False, length=n, broken_at=row["id"], reason="broken link")
        if content_hash(row["document"], previous) != row["content_hash"]:
            return ChainCheck(valid=False, length=n, broken_at=row["id"], reason="document altered")
        previous = row["content_hash"]
    return ChainCheck(valid=True, length=n, broken_at=None, reason=None)


class Change(BaseModel):
    line: str
    submitted: Any
    current: Any
    delta: float | None


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaves by path; list elements are named by their `line` when they have one."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in IGNORED or key == "line":
                continue
            out.update(flatten(item, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            name = item.get("line", i) if isinstance(item, Mapping) else i
            out.update(flatten(item, f"{path}[{name}]"))
        return out
    return {path: value}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=1e-12)
    return bool(a == b)


def changes(submitted: Mapping[str, Any], current: Mapping[str, Any]) -> list[Change]:
    """Every line whose value differs between the submitted and the current document,
    including lines only one of them has."""
    before, after = flatten(submitted), flatten(current)
    out = []
    for line in sorted(before.keys() | after.keys()):
        a, b = before.get(line), after.get(line)
        if _same(a, b):
            continue
        numeric = all(isinstance(x, float | int) and not isinstance(x, bool) for x in (a, b))
        out.append(
            Change(line=line, submitted=a, current=b, delta=(b - a) if numeric else None)  # type: ignore[operator]
        )
    return out
