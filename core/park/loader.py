"""Reading a park file: YAML to validated `Park`, or a list of issues naming exact paths.

The YAML loader keeps timestamps as strings (so a missing offset is caught
instead of silently read as local time) and refuses duplicate keys (which plain
YAML loaders resolve by keeping the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.locations import format_location
from core.park.checks import ConfigIssue, cross_field_issues
from core.park.models import Park


class ParkConfigError(ValueError):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class _StrictLoader(yaml.SafeLoader):
    pass


# Drop the implicit timestamp resolver: timestamps stay strings for pydantic.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _issues_from_validation(error: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in error.errors(include_url=False):
        path = format_location(tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        elif not message.startswith(repr(err.get("input"))):
            message = f"{err.get('input')!r}: {message}"
        issues.append(ConfigIssue(path, message))
    return issues


def parse_park(data: object) -> Park:
    """Validate already-parsed YAML; raises ParkConfigError listing every issue."""
    if not isinstance(data, dict):
        raise ParkConfigError([ConfigIssue("", "the park file must be a mapping at the top")])
    try:
        park = Park.model_validate(data)
    except ValidationError as exc:
        raise ParkConfigError(_issues_from_validation(exc)) from None
    issues = cross_field_issues(park)
    if issues:
        raise ParkConfigError(issues)
    return park


def load_yaml(text: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ParkConfigError([ConfigIssue("", f"not valid YAML: {exc}")]) from None


def load_park(path: Path) -> Park:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParkConfigError([ConfigIssue("", f"cannot read {path}: {exc.strerror}")]) from None
    return parse_park(load_yaml(text))
