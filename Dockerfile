# syntax=docker/dockerfile:1
#
# One image for every service of the park emissions monitor; compose picks the
# subcommand (`emissions ingest`, `emissions api`, ...). See docs/docker.md.
#
#   docker build -t park-emissions:local .
#   docker run --rm park-emissions:local --help

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------
# builder: a virtualenv with the package and its runtime dependencies only.
# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# The venv has no pip or setuptools of its own: the base image's pip installs
# into it (`pip --python`), so neither ends up in the runtime image.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src

# Runtime dependencies first, exactly as locked (requirements.lock: pinned and
# hash-checked; never the `dev` extra), in their own layer so that a code change
# does not reinstall them. scripts/lock.sh regenerates the lock.
COPY requirements.lock ./
RUN pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes --no-deps \
        -r requirements.lock

# The package itself (.dockerignore lets only the package sources, README.md,
# config/ and alembic.ini through). --no-deps: everything it needs is above.
COPY . .
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps . \
    && mkdir -p /app/config \
    && if [ -d config ]; then cp -R config/. /app/config/; fi \
    && if [ -f alembic.ini ]; then cp alembic.ini /app/; fi

# --------------------------------------------------------------------------
# runtime: slim Python, no compilers, no pip, non-root with a fixed uid.
# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="park-emissions" \
      org.opencontainers.image.description="IoT emissions monitoring for eco-industrial parks: MQTT meter readings to TimescaleDB, hourly CO2e, roadmap alerts." \
      org.opencontainers.image.licenses="Apache-2.0"

# Fixed uid/gid 10001 so that volume ownership is predictable across rebuilds.
# /var/lib/park-emissions (state: generated secrets) and /mosquitto-config
# (rendered broker config) are owned by that user in the image, so empty named
# volumes mounted there start out writable by it.
RUN groupadd --system --gid 10001 emissions \
    && useradd --system --uid 10001 --gid emissions --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin emissions \
    && install -d -o emissions -g emissions -m 0750 /var/lib/park-emissions /mosquitto-config

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EMISSIONS_STATE_DIR=/var/lib/park-emissions \
    EMISSIONS_PARK_CONFIG=/app/config/park.yaml \
    EMISSIONS_API_HOST=0.0.0.0

WORKDIR /app
USER 10001:10001

# api, ingest, engine, alerts (/metrics; ingest also /healthz). Health checks
# live in compose.yaml, since each service runs a different subcommand.
EXPOSE 8000 9101 9102 9103

ENTRYPOINT ["emissions"]
CMD ["--help"]
