"""Uncertainty by error propagation, IPCC 2006 Guidelines Vol 1 ch 3, approach 1.

Uncertainties are half-widths of the 95 % confidence interval in percent of the
quantity. A product (activity x factor) combines as the root sum of squares of
its relative uncertainties (eq. 3.1); a sum of quantities combines as the root
sum of squares of their absolute uncertainties over the sum (eq. 3.2). Meters of
one source share its factor, so the factor's uncertainty is applied once per
source (fully correlated), after the meters' activity uncertainties are summed as
independent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def product_pct(*relative_pcts: float) -> float:
    """U of a product from the Us of its factors (IPCC eq. 3.1)."""
    return math.sqrt(math.fsum(u * u for u in relative_pcts))


def sum_pct(parts: Iterable[tuple[float, float]]) -> float | None:
    """U of a sum from (quantity, U %) pairs (IPCC eq. 3.2); None for a zero sum."""
    items = list(parts)
    total = math.fsum(x for x, _ in items)
    if total == 0:
        return None
    return math.sqrt(math.fsum((x * u) ** 2 for x, u in items)) / abs(total)
