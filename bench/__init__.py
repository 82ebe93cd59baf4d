"""The benchmarks, each run as `python -m bench.<name>` (bench/README.md).

- bench/stack/: what a run stands on (throw-away database, private broker,
  service subprocesses, py-spy);
- bench/publishers/: the load generator (publisher processes and what they publish);
- bench/report.py, bench/summary.py: tables, the results JSON and the summaries;
- one module or package per benchmark.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
