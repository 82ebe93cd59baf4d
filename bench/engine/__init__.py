"""bench.engine: recompute throughput, freshness under load, scale and totals of the
engine (run it as `python -m bench.engine`).

- plan.py: sizes, goals, the park's meters; recompute.py: step 1;
- freshness.py, observers.py: step 2; scale.py: step 3; totals.py: step 4;
- worker.py: the engine under test in a process of its own (scale, totals, and
  the baseline's recompute); tables.py: the printed table and the goals missed.
"""
