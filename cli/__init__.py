"""The composition root: the `emissions` command, wiring every component's commands.

Nothing imports this package; it imports the components (core, ingest, engine, api,
alerts, reports, simulator), so core/ never has to import any of them.
"""
