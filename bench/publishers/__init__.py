"""The load generator: publisher processes (multiprocessing, spawn: they share no
GIL with what they measure) that connect as gateway users and publish a workload.

- canonical.py: the canonical JSON payloads and the park's gateways;
- clients.py: the paho clients of a publisher process, driven by its one thread;
- process.py: the processes, released together, and their reports;
- jobs.py: N messages from one gateway, as fast as possible or at a fixed rate
  (bench.ingest);
- load.py: a steady live load over every gateway plus probe readings (bench.engine).
"""
