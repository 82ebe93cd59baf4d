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
    # Components still to land (issues 5-7):
    #   spawn api       "$EMISSIONS" api serve
    #   spawn alerts    "$EMISSIONS" alerts run
    #   spawn simulator "$EMISSIONS" simulate --park config/park.yaml
    if ((${#PIDS[@]} == 0)); then
        log "no demo components to start yet"
        return 0
    fi
    log "demo running; Ctrl-C stops it"
    # Returns when any component exits; the EXIT trap then stops the others.
    wait -n
}
# ---------------------------------------------------------------------------------------

summary
start_components
