"""The lock files pin every dependency, and this environment was installed from them:
a branch that adds a dependency without `scripts/lock.sh` fails here, not on a new
machine that resolves something untested."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def pins(lock: str) -> dict[str, tuple[str, str | None]]:
    """name -> (version, environment marker) for the pins that apply to this Python (a
    universal lock may pin one package twice, e.g. numpy below and above 3.12)."""
    found: dict[str, tuple[str, str | None]] = {}
    for line in (ROOT / lock).read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match and (match[3] is None or Marker(match[3]).evaluate()):
            found[canonicalize_name(match[1])] = (match[2], match[3])
    return found


def declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(d) for d in deps]


@pytest.mark.parametrize(
    ("lock", "extra"), [("requirements.lock", None), ("requirements-dev.lock", "dev")]
)
def test_every_declared_dependency_is_pinned_within_its_range(lock: str, extra: str | None) -> None:
    locked = pins(lock)
    for req in declared(extra):
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in locked, (
            f"{req.name} is in pyproject.toml but not in {lock}: run scripts/lock.sh"
        )
        pinned = locked[name][0]
        assert req.specifier.contains(pinned, prereleases=True), (
            f"{lock} pins {req.name}=={pinned}, outside {req.specifier}: run scripts/lock.sh"
        )


def test_every_lock_line_has_hashes() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text(encoding="utf-8")
        assert pins(lock)
        for block in re.split(r"\n(?=\S)", text):
            if "==" in block.split("\n", 1)[0]:
                assert "--hash=sha256:" in block, block.split("\n", 1)[0]


def test_runtime_pins_agree_between_the_two_locks() -> None:
    dev = pins("requirements-dev.lock")
    for name, (pinned, _) in pins("requirements.lock").items():
        assert dev[name][0] == pinned, f"{name}: {pinned} vs {dev[name][0]}"


def test_this_environment_was_installed_from_the_dev_lock() -> None:
    """What the tests run on is what the lock says (scripts/setup.sh installs it)."""
    for name, (pinned, _) in pins("requirements-dev.lock").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.fail(f"{name}=={pinned} is locked but not installed: run scripts/setup.sh")
        assert installed == pinned, f"{name}: installed {installed}, locked {pinned}"
