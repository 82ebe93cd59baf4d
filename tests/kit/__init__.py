"""The start/stop shapes the tests share, each a context manager that stops what it
started however the block ends, so that a test reads as what it asserts.

- `broker`: a Mosquitto of the test's own (`running_broker`), free ports.
- `database`: a throw-away migrated database holding a park (`park_database`).
- `ingest`: the real ingestor on a fresh broker session (`running_ingest`), and
  `IngestStack`, the store and broker it runs against (the `stack` fixtures).
- `serving`: a process or thread serving HTTP, ready once its health URL answers.
- `mqtt`: test clients logged in as a broker user, subscribed, or clearing a topic.
- `paths`: where the project's files are.

Nothing here imports `tests.conftest`: its fixtures are built from this kit, and test
modules import the kit, never the conftest.
"""
