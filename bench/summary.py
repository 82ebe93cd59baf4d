"""What every benchmark ends with: its figures against its goals, written twice.

- bench/results/<name>-<UTC time>.json: everything, for comparison runs
  (git-ignored);
- bench/summaries/<name>[-quick].md: the figures, the goals met or missed, the
  exact command, the commit and the machine's load. Committed: docs quote a
  figure by linking its summary, so every number in the docs names the code and
  the run it came from, and a re-run on new code replaces it.

`finish()` returns the process exit status: 0 when every goal is met, 1 when one
is missed, so CI or a shell loop can tell. Usage:

    summary = Summary("api", quick=args.quick)
    summary.figure("site_year p50", 12.3, "ms")
    summary.goal("site_year p99", 41.0, "ms", at_most=50.0)
    summary.goal("throughput", 9800.0, "readings/s", at_least=5000.0)
    return summary.finish(details)  # details: anything JSON-serialisable
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ROOT


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    at_most: float | None = None
    at_least: float | None = None

    @property
    def is_goal(self) -> bool:
        return self.at_most is not None or self.at_least is not None

    @property
    def met(self) -> bool:
        low_ok = self.at_least is None or self.value >= self.at_least
        high_ok = self.at_most is None or self.value <= self.at_most
        return low_ok and high_ok

    @property
    def goal_text(self) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f">= {self.at_least:,g} {self.unit}")
        if self.at_most is not None:
            parts.append(f"<= {self.at_most:,g} {self.unit}")
        return " and ".join(parts)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def commit() -> str:
    """The commit measured, with '+dirty' when the work tree has uncommitted changes
    to tracked files (then the figures belong to no commit exactly)."""
    try:
        head = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@dataclass
class Summary:
    name: str
    quick: bool = False
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    figures: list[Figure] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    results_dir: Path = ROOT / "bench" / "results"
    summaries_dir: Path = ROOT / "bench" / "summaries"

    def figure(self, name: str, value: float, unit: str) -> None:
        """A figure the docs may quote, with no goal of its own."""
        self.figures.append(Figure(name, float(value), unit))

    def goal(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
    ) -> None:
        if at_most is None and at_least is None:
            raise ValueError(f"{name}: a goal needs at_most or at_least")
        self.figures.append(Figure(name, float(value), unit, at_most, at_least))

    @property
    def missed(self) -> list[Figure]:
        return [f for f in self.figures if f.is_goal and not f.met]

    def command(self) -> str:
        module = f"bench.{self.name}"
        return shlex.join([".venv/bin/python", "-m", module, *self.argv[1:]])

    def markdown(self, at: datetime, revision: str) -> str:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        lines = [
            f"# bench/{self.name}.py{' (quick)' if self.quick else ''}",
            "",
            "Written by the benchmark itself (bench/summary.py); re-run it to replace.",
            "",
            f"- command: `{self.command()}`",
            f"- commit: `{revision}`",
            f"- finished: {at.isoformat(timespec='seconds')}, "
            f"took {(at - self.started).total_seconds():.0f} s",
            f"- machine: {os.cpu_count()} CPUs, load average {load} at the end",
            f"- goals: {'all met' if not self.missed else f'{len(self.missed)} MISSED'}",
            "",
            "| figure | value | goal | met |",
            "|---|---|---|---|",
        ]
        for f in self.figures:
            met = ("yes" if f.met else "**no**") if f.is_goal else ""
            lines.append(f"| {f.name} | {f.value:,.2f} {f.unit} | {f.goal_text} | {met} |")
        return "\n".join(lines) + "\n"

    def finish(self, details: dict[str, Any] | None = None) -> int:
        """Write both files, print where, and return the exit status."""
        at = datetime.now(UTC)
        revision = commit()
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.summaries_dir.mkdir(parents=True, exist_ok=True)
        suffix = "-quick" if self.quick else ""
        report = {
            "benchmark": self.name,
            "command": self.command(),
            "commit": revision,
            "started": self.started.isoformat(),
            "finished": at.isoformat(),
            "load_average": os.getloadavg(),
            "figures": [f.__dict__ | {"met": f.met if f.is_goal else None} for f in self.figures],
            "met": not self.missed,
            "details": details or {},
        }
        result = self.results_dir / f"{self.name}{suffix}-{at:%Y%m%dT%H%M%SZ}.json"
        result.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        summary = self.summaries_dir / f"{self.name}{suffix}.md"
        summary.write_text(self.markdown(at, revision), encoding="utf-8")
        print(f"wrote {_shown(result)} and {_shown(summary)}")
        for f in self.missed:
            print(f"goal missed: {f.name} = {f.value:,.2f} {f.unit}, goal {f.goal_text}")
        return 1 if self.missed else 0
