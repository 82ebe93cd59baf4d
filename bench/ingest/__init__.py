"""bench.ingest: the ingestor against its ceilings (run it as `python -m bench.ingest`).

- plan.py: sizes, each run's own day, the shared state of a run;
- diagnostics.py: parser, BatchWriter, Pipeline and COPY alone, in this process;
- ceilings.py: the bare subscriber and the naive baseline;
- throughput.py, latency.py: the ingestor end to end;
- tables.py: the printed tables; __main__.py: options and the order of the steps.
"""
