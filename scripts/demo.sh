#!/usr/bin/env bash
# Sets everything up and runs the demo on local defaults: scripts/demo.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/setup.sh"
cd "$ROOT"
EMISSIONS="$VENV/bin/emissions"

log "applying database migrations"
"$EMISSIONS" db upgrade
log "applying the park configuration config/park.yaml"
"$EMISSIONS" config apply config/park.yaml

# A console user for the demo: its generated password lives with the other secrets
# in the state directory, never in the repository.
DEMO_USER=demo-admin
DEMO_PASSWORD_FILE="$SECRETS_DIR/console_demo_password"
if [[ ! -s "$DEMO_PASSWORD_FILE" ]]; then
    (umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(15))' \
        >"$DEMO_PASSWORD_FILE")
fi
USERS="$("$EMISSIONS" user list)"
if [[ "$USERS" != *"$DEMO_USER"* ]]; then
    "$EMISSIONS" user create "$DEMO_USER" --role admin --language vi \
        --password-file "$DEMO_PASSWORD_FILE"
fi

summary() {
    local license
    license="$(cat "$STATE_DIR/timescaledb.license" 2>/dev/null || echo unknown)"
    cat <<SUMMARY

What runs where
  store    PostgreSQL $PG_MAJOR + TimescaleDB (licence: $license) on 127.0.0.1:$PG_PORT, database emissions, user emissions
  broker   Mosquitto on 127.0.0.1:$MQTT_PORT
  ingest   emissions ingest (health and metrics on http://127.0.0.1:9101/healthz, /metrics)
  engine   emissions engine run (http://127.0.0.1:9102/healthz, /metrics; live rate on parks/{site}/emissions/live)
  api      emissions api on http://127.0.0.1:8000 (docs /docs, /healthz, /readyz, /metrics; a key: emissions apikey create NAME --role admin)
  console  http://127.0.0.1:8000/console/ (sign in as $DEMO_USER, password: $(cat "$DEMO_PASSWORD_FILE"); more users: emissions user create NAME --role operator)
  alerts   emissions alerts run (http://127.0.0.1:9103/healthz, /metrics; retained changes on parks/{site}/alerts/{rule})
  metrics  Prometheus on http://127.0.0.1:9090 (scrapes the above; service-health rules in docker/prometheus/rules/)
  state    $STATE_DIR (secrets in $SECRETS_DIR, logs in $LOG_DIR)
  stop     scripts/services.sh stop

SUMMARY
}

# ---------------------------------------------------------------------------------------
# Demo components, run in the foreground until Ctrl-C, which stops them all.
# Start each one with `spawn NAME COMMAND...`.
PIDS=()
NAMES=()

spawn() {
    local name="$1"
    shift
    log "starting $name: $*"
    "$@" &
    PIDS+=("$!")
    NAMES+=("$name")
}

stop_components() {
    trap - INT TERM EXIT
    local i
    for i in "${!PIDS[@]}"; do
        if kill -0 "${PIDS[$i]}" 2>/dev/null; then
            log "stopping ${NAMES[$i]} (pid ${PIDS[$i]})"
            kill -TERM "${PIDS[$i]}" 2>/dev/null || true
        fi
    done
    wait || true
}

start_components() {
    trap stop_components INT TERM EXIT
    spawn ingest "$EMISSIONS" ingest
    spawn engine "$EMISSIONS" engine run
    spawn api "$EMISSIONS" api
    spawn prometheus prometheus --config.file="$ROOT/docker/prometheus/prometheus-local.yml" \
        --storage.tsdb.path="$STATE_DIR/prometheus" --web.listen-address=127.0.0.1:9090 --log.level=warn
    # The park's meters (docs/simulator.md). Ingest subscribes first: its persistent
    # session must exist before anything is published.
    local waited=0
    until port_open 9101 || ((waited >= 30)); do sleep 1; waited=$((waited + 1)); done
    sleep 2
    # The last 30 days at full speed, so dashboards and the API have history at once.
    # The state file keeps the registers: a restarted demo backfills only the time it
    # was down. Alerts start after it, so they judge the park, not a half-loaded store.
    log "backfilling the last 30 days (accelerated)"
    "$EMISSIONS" simulate --park config/park.yaml --mode accelerated \
        --state "$STATE_DIR/simulator/state.json"
    spawn alerts "$EMISSIONS" alerts run
    spawn simulator "$EMISSIONS" simulate --park config/park.yaml --mode realtime --backfill 30d \
        --state "$STATE_DIR/simulator/state.json"
    log "demo running; Ctrl-C stops it"
    # Returns when any component exits; the EXIT trap then stops the others.
    wait -n
}
# ---------------------------------------------------------------------------------------

summary
start_components
