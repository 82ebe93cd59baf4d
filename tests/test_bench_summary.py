"""bench/summary.py: a benchmark that misses its goal exits non-zero, and the summary
the docs quote names the command, the commit and the figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.summary import Summary, commit


def summary(tmp_path: Path, quick: bool = False) -> Summary:
    return Summary(
        "demo",
        quick=quick,
        argv=["bench/demo.py", "--quick"] if quick else ["bench/demo.py"],
        results_dir=tmp_path / "results",
        summaries_dir=tmp_path / "summaries",
    )


def test_met_goals_exit_zero_and_the_summary_names_command_and_commit(tmp_path: Path) -> None:
    s = summary(tmp_path)
    s.figure("cold request", 812.5, "ms")
    s.goal("p99", 41.2, "ms", at_most=50)
    s.goal("throughput", 9_800, "readings/s", at_least=5_000)
    assert s.finish({"raw": [1, 2]}) == 0
    text = (tmp_path / "summaries" / "demo.md").read_text(encoding="utf-8")
    assert "`.venv/bin/python -m bench.demo`" in text
    assert f"`{commit()}`" in text and re.search(r"`[0-9a-f]{12}(\+dirty)?`", text)
    assert "| p99 | 41.20 ms | <= 50 ms | yes |" in text
    assert "| throughput | 9,800.00 readings/s | >= 5,000 readings/s | yes |" in text
    assert "| cold request | 812.50 ms |  |  |" in text
    (result,) = (tmp_path / "results").glob("demo-*.json")
    report = json.loads(result.read_text(encoding="utf-8"))
    assert report["met"] is True and report["details"] == {"raw": [1, 2]}
    assert report["commit"] == commit()


def test_a_missed_goal_exits_one_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = summary(tmp_path, quick=True)
    s.goal("p99", 376.0, "ms", at_most=250)
    assert s.finish() == 1
    assert "goal missed: p99 = 376.00 ms, goal <= 250 ms" in capsys.readouterr().out
    text = (tmp_path / "summaries" / "demo-quick.md").read_text(encoding="utf-8")
    assert "1 MISSED" in text and "| p99 | 376.00 ms | <= 250 ms | **no** |" in text
    assert "--quick" in text


def test_a_goal_needs_a_bound(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at_most or at_least"):
        summary(tmp_path).goal("p99", 1.0, "ms")
