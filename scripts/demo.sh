#!/usr/bin/env bash
# Sets everything up and runs the demo on local defaults: scripts/demo.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/setup.sh"
cd "$ROOT"
EMISSIONS="$VENV/bin/emissions"
PARK_TZ=Asia/Ho_Chi_Minh # config/park.yaml's site: its year to date is backfilled

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

# Whether the engine has priced everything ingest stored (the backfill steps wait
# until ingest confirmed their batches): alerts started earlier judge a half-priced
# store. A first-run demo that started them as soon as the simulator was done fired
# a silent-meter alert for every meter while ingest was still storing the last days.
engine_caught_up() {
    "$VENV/bin/python" - <<'PY'
import sys

from core.db import make_engine
from core.settings import Settings
from engine.marks import dirty_count

engine = make_engine(Settings())
with engine.connect() as conn:
    dirty = dirty_count(conn)
engine.dispose()
print(f"{dirty} meter-hours waiting for the engine")
sys.exit(0 if dirty == 0 else 1)
PY
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
    # A signal ends the script (bash runs a handler, then carries on with the next
    # line: Ctrl-C during the backfill would have started the next step); the EXIT
    # trap then stops every component.
    trap stop_components EXIT
    trap 'exit 130' INT TERM
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
    # The year to date at full speed, so the roadmap's year-to-date figures and the
    # API have history at once: hourly readings (jitter 0, so no hour reads as a gap;
    # one batch per gateway and simulated hour) up to two days ago, then every minute.
    # The state file keeps the registers: a restarted demo backfills only the time it
    # was down. Each step waits until ingest confirmed every batch (`committed`): the
    # gateways' buffer would otherwise republish the unconfirmed rest of one step at
    # the start of the next, and ingest wade through duplicates. Alerts start after
    # it, so they judge the park, not a half-loaded store.
    local state="$STATE_DIR/simulator/state.json" year_start recent
    year_start="$(TZ="$PARK_TZ" date +%Y)-01-01T00:00:00$(TZ="$PARK_TZ" date +%:z)"
    recent="$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%S+00:00)"
    if (($(date -d "$year_start" +%s) < $(date -d "$recent" +%s))); then
        log "backfilling $year_start .. $recent with hourly readings (accelerated)"
        "$EMISSIONS" simulate --park config/park.yaml --mode accelerated --start "$year_start" \
            --end "$recent" --interval-s 3600 --jitter-s 0 --batch-s 3600 --state "$state" \
            --wait-committed 60
    else
        recent="$year_start"
    fi
    log "backfilling $recent .. now with readings every minute (accelerated)"
    "$EMISSIONS" simulate --park config/park.yaml --mode accelerated --start "$recent" \
        --state "$state" --wait-committed 60
    local status
    waited=0
    until status="$(engine_caught_up)" || ((waited >= 300)); do
        ((waited % 10 == 0)) && log "waiting for the engine: $status"
        sleep 1
        waited=$((waited + 1))
    done
    log "engine: $status"
    spawn alerts "$EMISSIONS" alerts run
    # A dozen counters report 0 once in the next minutes (glitches: stored, left out
    # of the totals): more than the park's max_glitches, so the data-quality alert
    # fires within minutes and shows the alert path end to end.
    local glitches=() i at
    for i in $(seq 1 12); do
        at="$(date -u -d "+$((60 + 5 * i)) sec" +%Y-%m-%dT%H:%M:%S+00:00)"
        glitches+=(--fault "glitch:at=$at")
    done
    spawn simulator "$EMISSIONS" simulate --park config/park.yaml --mode realtime \
        --state "$state" "${glitches[@]}"
    log "reports (docs/reports.md): $EMISSIONS report intensity --site NCK --year $(date +%Y)"
    log "demo running; Ctrl-C stops it"
    # Returns when any component exits; the EXIT trap then stops the others.
    wait -n
}
# ---------------------------------------------------------------------------------------

summary
start_components
