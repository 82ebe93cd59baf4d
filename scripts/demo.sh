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

ingest_ready() {
    local status=""
    { exec 3<>"/dev/tcp/127.0.0.1/9101"; } 2>/dev/null || return 1
    printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r _ status _ <&3 || true
    exec 3<&-
    [[ "$status" == 200 ]]
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
    # /readyz answers 200 once the broker granted ingest's subscriptions.
    local waited=0
    until ingest_ready || ((waited >= 60)); do sleep 0.5; waited=$((waited + 1)); done
    ingest_ready || die "ingest is not ready after 30 s (see $LOG_DIR)"
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
