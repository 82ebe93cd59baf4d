"""What a benchmark runs against, made for the run and removed after it: a
throw-away database on the project's instance, a private Mosquitto rendered from
the project's own configuration, and the services as subprocesses. Every piece
registers its clean-up on the caller's `contextlib.ExitStack`."""
