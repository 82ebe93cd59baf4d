"""The pure parts of the reports: IPCC approach-1 combination, submission hashes,
chain verification and line-by-line differences."""

from __future__ import annotations

import hashlib
import math

from hypothesis import given
from hypothesis import strategies as st

from reports.submissions import canonical, changes, content_hash, verify_chain
from reports.uncertainty import product_pct, sum_pct

pct = st.floats(min_value=0, max_value=100, allow_nan=False)
amount = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)


@given(amount, pct)
def test_one_part_keeps_its_uncertainty(x: float, u: float) -> None:
    result = sum_pct([(x, u)])
    assert result is not None and math.isclose(result, u, rel_tol=1e-12, abs_tol=1e-12)


@given(st.lists(st.tuples(amount, pct), min_size=2, max_size=20))
def test_a_sum_is_never_less_certain_than_its_worst_share(parts: list[tuple[float, float]]) -> None:
    """Independent errors partly cancel: U of a sum never exceeds its parts' largest U."""
    result = sum_pct(parts)
    assert result is not None
    assert result <= max(u for _, u in parts) * (1 + 1e-9)


def test_textbook_values() -> None:
    assert product_pct(3.0, 4.0) == 5.0
    assert sum_pct([(100.0, 10.0), (100.0, 10.0)]) == math.sqrt(2) * 1000 / 200
    assert sum_pct([(0.0, 5.0)]) is None


def test_chain_and_its_breaks() -> None:
    docs = [canonical({"n": i, "x": [1.5, "é"]}) for i in range(3)]
    rows, previous = [], None
    for i, doc in enumerate(docs, start=1):
        digest = content_hash(doc, previous)
        assert digest == hashlib.sha256(((previous or "") + doc).encode()).hexdigest()
        rows.append({"id": i, "document": doc, "content_hash": digest, "previous_hash": previous})
        previous = digest
    assert verify_chain(rows).valid and verify_chain(rows).length == 3
    assert verify_chain([]).valid
    skipped = [rows[0], rows[2]]
    check = verify_chain(skipped)
    assert not check.valid and check.broken_at == 3 and check.reason == "broken link"


def test_changes_name_lines_not_positions() -> None:
    before = {
        "generated_at": "a",
        "sources": [{"line": "A/e", "co2e_kg": 1.0}, {"line": "A/d", "co2e_kg": 2.0}],
    }
    after = {
        "generated_at": "b",
        "sources": [
            {"line": "A/d", "co2e_kg": 2.0 + 1e-13},  # noise, not a restatement
            {"line": "A/e", "co2e_kg": 1.5},
            {"line": "A/w", "co2e_kg": 0.1},
        ],
    }
    found = {c.line: (c.submitted, c.current, c.delta) for c in changes(before, after)}
    assert found == {
        "sources[A/e].co2e_kg": (1.0, 1.5, 0.5),
        "sources[A/w].co2e_kg": (None, 0.1, None),
    }
