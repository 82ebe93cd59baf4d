"""What applying a park file changed, per table: shared by the loader's parts
(core/park/repository.py, report_inputs.py, device_store.py) without a cycle."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ApplySummary:
    """Rows inserted, changed and deactivated per table: what `config apply` reports."""

    inserted: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    deactivated: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return any(c.total() for c in (self.inserted, self.updated, self.deactivated))
