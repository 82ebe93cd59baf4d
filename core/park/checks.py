"""Rules that relate several parts of the park file, each reported with its exact path."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

from core import topics
from core.meter_kinds import CANONICAL_UNITS, PRODUCTION_KINDS
from core.park.devices import PER_DEVICE_CLIENT
from core.park.models import Enterprise, Meter, Park
from core.units import dimension


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _repeated(keys: Sequence[Hashable]) -> list[int]:
    """Indexes of the keys that stand earlier in `keys` too, in order: where a list
    that must not repeat itself is reported as repeating."""
    seen: set[Hashable] = set()
    repeated = []
    for i, key in enumerate(keys):
        if key in seen:
            repeated.append(i)
        seen.add(key)
    return repeated


def cross_field_issues(park: Park) -> list[ConfigIssue]:
    return [
        *_duplicate_ids(park),
        *_factor_issues(park),
        *_meter_issues(park),
        *_roadmap_issues(park),
        *_alert_issues(park),
        *_report_issues(park),
        *_device_issues(park),
    ]


def _duplicate_ids(park: Park) -> Iterator[ConfigIssue]:
    seen: dict[tuple[str, str], str] = {}

    def check(kind: str, value: str, path: str) -> Iterator[ConfigIssue]:
        first = seen.setdefault((kind, value), path)
        if first != path:
            yield ConfigIssue(path, f"duplicate {kind} id {value!r} (first at {first})")

    for f, factor in enumerate(park.factors):
        yield from check("factor", factor.key, f"factors[{f}].key")
    for s, site in enumerate(park.sites):
        yield from check("site", site.id, f"sites[{s}].id")
        for e, ent in enumerate(site.enterprises):
            yield from check("enterprise", ent.id, f"sites[{s}].enterprises[{e}].id")
            yield from check("gateway", ent.gateway_id, f"sites[{s}].enterprises[{e}].gateway")
            for m, meter in enumerate(ent.meters):
                yield from check("meter", meter.id, f"sites[{s}].enterprises[{e}].meters[{m}].id")


def _factor_issues(park: Park) -> Iterator[ConfigIssue]:
    known = {f.key for f in park.factors}
    for kind, key in park.default_factors.items():
        if key not in known:
            yield ConfigIssue(f"default_factors.{kind}", f"unknown factor {key!r}")
    for f, factor in enumerate(park.factors):
        for v in _repeated([value.valid_from for value in factor.values]):
            yield ConfigIssue(
                f"factors[{f}].values[{v}].valid_from",
                f"{factor.values[v].valid_from.isoformat()!r} appears twice for factor "
                f"{factor.key!r}",
            )


def _parent_issue(ent: Enterprise, meter: Meter) -> str | None:
    if meter.parent is None:
        return None
    parent = next((m for m in ent.meters if m.id == meter.parent), None)
    if parent is None or parent.id == meter.id:
        return f"{meter.parent!r} is not another meter of enterprise {ent.id!r}"
    if parent.kind != meter.kind or parent.parent is not None:
        return f"{meter.parent!r} must be a main meter of the same kind ({meter.kind.value})"
    return None


def _meter_issues(park: Park) -> Iterator[ConfigIssue]:
    factors = {f.key: f for f in park.factors}
    for s, site in enumerate(park.sites):
        for e, ent in enumerate(site.enterprises):
            for m, meter in enumerate(ent.meters):
                path = f"sites[{s}].enterprises[{e}].meters[{m}]"
                parent_issue = _parent_issue(ent, meter)
                if parent_issue:
                    yield ConfigIssue(f"{path}.parent", parent_issue)
                if meter.site is not None and meter.site != site.id:
                    yield ConfigIssue(
                        f"{path}.site", f"{meter.site!r} differs from its site {site.id!r}"
                    )
                if meter.enterprise is not None and meter.enterprise != ent.id:
                    yield ConfigIssue(
                        f"{path}.enterprise",
                        f"{meter.enterprise!r} differs from its enterprise {ent.id!r}",
                    )
                canonical = CANONICAL_UNITS[meter.kind]
                if dimension(meter.unit) != dimension(canonical):
                    yield ConfigIssue(
                        f"{path}.unit",
                        f"{meter.unit!r} is not a unit for a {meter.kind} meter "
                        f"(it must convert to {canonical!r})",
                    )
                if meter.reading == "delta" and meter.interval_s is None:
                    yield ConfigIssue(f"{path}.interval_s", "required for a delta meter")
                if meter.reading == "counter" and meter.interval_s is not None:
                    yield ConfigIssue(f"{path}.interval_s", "only delta meters have an interval")
                if meter.reading == "delta" and meter.rollover is not None:
                    yield ConfigIssue(f"{path}.rollover", "only counter meters roll over")
                key = park.factor_key_for(meter)
                if key is None:
                    yield ConfigIssue(
                        f"{path}.factor",
                        f"no factor given and no default_factors entry for kind {meter.kind!r}",
                    )
                elif key not in factors:
                    yield ConfigIssue(f"{path}.factor", f"unknown factor {key!r}")
                elif meter.kind in PRODUCTION_KINDS and any(
                    v.kgco2e_per_unit != 0 for v in factors[key].values
                ):
                    yield ConfigIssue(
                        f"{path}.factor",
                        f"production output carries no CO2e: factor {key!r} must be 0",
                    )
                elif dimension(factors[key].unit) != dimension(meter.unit):
                    yield ConfigIssue(
                        f"{path}.unit",
                        f"{meter.unit!r} does not convert to {factors[key].unit!r} "
                        f"of factor {key!r}",
                    )


def _roadmap_issues(park: Park) -> Iterator[ConfigIssue]:
    for s, site in enumerate(park.sites):
        if site.roadmap is None:
            continue
        previous_year = site.roadmap.baseline.year
        previous_pct = 0.0
        for i, milestone in enumerate(site.roadmap.milestones):
            path = f"sites[{s}].roadmap.milestones[{i}]"
            if milestone.year <= previous_year:
                yield ConfigIssue(
                    f"{path}.year",
                    f"{milestone.year} must come after {previous_year} "
                    "(milestones follow the baseline in increasing years)",
                )
            if milestone.reduction_pct < previous_pct:
                yield ConfigIssue(
                    f"{path}.reduction_pct",
                    f"{milestone.reduction_pct} is below the earlier milestone's {previous_pct}",
                )
            previous_year = milestone.year
            previous_pct = milestone.reduction_pct


def _alert_issues(park: Park) -> Iterator[ConfigIssue]:
    for s, site in enumerate(park.sites):
        path = f"sites[{s}].alerts"
        windows = site.alerts.drift.windows
        for w in _repeated(windows):
            yield ConfigIssue(f"{path}.drift.windows[{w}]", f"{windows[w].value!r} appears twice")
        names = [hook.name for hook in site.alerts.webhooks]
        for h in _repeated(names):
            yield ConfigIssue(f"{path}.webhooks[{h}].name", f"duplicate webhook {names[h]!r}")
        for e, ent in enumerate(site.enterprises):
            if ent.alerts and ent.alerts.drift and site.roadmap is None:
                yield ConfigIssue(
                    f"sites[{s}].enterprises[{e}].alerts.drift",
                    f"an enterprise's drift needs a roadmap on its site {site.id!r}",
                )


def _report_issues(park: Park) -> Iterator[ConfigIssue]:
    """TOE factors: one per kind, an energy carrier's unit. Allocations: one per year,
    in the unit of one of the enterprise's production meters."""
    repeated_kinds = _repeated([toe.kind for toe in park.toe_factors])
    for t, toe in enumerate(park.toe_factors):
        path = f"toe_factors[{t}]"
        if t in repeated_kinds:
            yield ConfigIssue(f"{path}.kind", f"{toe.kind.value!r} appears twice")
        if toe.kind in PRODUCTION_KINDS:
            yield ConfigIssue(f"{path}.kind", "production output is not energy")
        elif dimension(toe.unit) != dimension(CANONICAL_UNITS[toe.kind]):
            yield ConfigIssue(f"{path}.unit", f"{toe.unit!r} is not a unit for {toe.kind.value!r}")
    for s, site in enumerate(park.sites):
        for e, ent in enumerate(site.enterprises):
            produced = {dimension(m.unit) for m in ent.meters if m.kind in PRODUCTION_KINDS}
            repeated_years = _repeated([allocation.year for allocation in ent.allocations])
            for a, allocation in enumerate(ent.allocations):
                path = f"sites[{s}].enterprises[{e}].allocations[{a}]"
                if a in repeated_years:
                    yield ConfigIssue(f"{path}.year", f"{allocation.year} appears twice")
                if dimension(allocation.unit) not in produced:
                    yield ConfigIssue(
                        f"{path}.unit",
                        f"{allocation.unit!r} matches no production meter of {ent.id!r}",
                    )


def _device_issues(park: Park) -> Iterator[ConfigIssue]:
    """A mapped meter must exist (it may belong to another enterprise: ingest then
    quarantines its readings as `foreign_meter`, as for any gateway); one field of one
    device feeds one meter; a per-device broker user must not shadow another user."""
    meters = {m.id for _, _, m in park.meters()}
    users = {e.gateway_id for s in park.sites for e in s.enterprises}
    seen: dict[tuple[str, str], str] = {}
    clients: dict[str, str] = {}
    for s, site in enumerate(park.sites):
        for e, ent in enumerate(site.enterprises):
            for d, device in enumerate(ent.devices):
                path = f"sites[{s}].enterprises[{e}].devices[{d}]"
                if device.meter not in meters:
                    yield ConfigIssue(f"{path}.meter", f"unknown meter {device.meter!r}")
                key = (
                    topics.native(ent.protocol, ent.gateway_id, device.device, device.application),
                    device.field,
                )
                first = seen.setdefault(key, path)
                if first != path:
                    yield ConfigIssue(path, f"device field already mapped at {first}")
                if ent.protocol in PER_DEVICE_CLIENT:
                    owner = clients.setdefault(device.device, ent.gateway_id)
                    if device.device in users or owner != ent.gateway_id:
                        yield ConfigIssue(
                            f"{path}.device",
                            f"device {device.device!r} is already a broker user of another gateway",
                        )
