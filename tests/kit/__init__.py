"""The start/stop shapes the tests share, each a context manager that stops what it
started however the block ends, so a test reads as what it asserts.

- `broker`: a Mosquitto of the test's own (`running_broker`), free ports.
- `database`: a throw-away migrated database holding a park (`park_database`).
- `ingest`: the real ingestor process on a fresh broker session (`running_ingest`).
- `serving`: a process or thread serving HTTP, ready once its health URL answers.
- `mqtt`: test clients logged in as a broker user, and topic viewers.

Nothing here imports `tests.conftest`: the fixtures there are built from this kit.
"""
