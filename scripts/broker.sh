#!/usr/bin/env bash
# The project's own Mosquitto instance: scripts/broker.sh start|stop|status
#   start   render its configuration (emissions broker render), start it when nothing
#           listens on 127.0.0.1:$EMISSIONS_MQTT_PORT, reload it (SIGHUP) when it runs
#           and the rendered configuration changed
#   stop    stop it (pid file)
#   status  say whether it runs (exit 0 running, 3 not running)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF="$BROKER_DIR/mosquitto.conf"
PID_FILE="$BROKER_DIR/mosquitto.pid"
LOADED_MARK="$BROKER_DIR/.loaded.sha256"

# Pid of our running broker, from the pid file; empty when it does not run.
broker_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 0
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
        && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == mosquitto ]]; then
        printf '%s' "$pid"
    fi
}

# Pid of whatever listens on 127.0.0.1:$MQTT_PORT (needs ss; empty if unknown).
listener_pid() {
    command -v ss >/dev/null || return 0
    ss -Hltnp "sport = :$MQTT_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# Hash of the rendered configuration files the broker reads.
config_hash() {
    local f files=()
    for f in "$CONF" "$BROKER_DIR/acl" "$BROKER_DIR/passwd"; do
        [[ -f "$f" ]] && files+=("$f")
    done
    cat "${files[@]}" | sha256sum | cut -d' ' -f1
}

render() {
    local cli="$VENV/bin/emissions"
    [[ -x "$cli" ]] || die "$cli is missing: run scripts/setup.sh first"
    mkdir -p "$BROKER_DIR"
    (cd "$ROOT" && "$cli" broker render --out "$BROKER_DIR" >/dev/null) \
        || die "'emissions broker render --out $BROKER_DIR' failed"
    [[ -f "$CONF" ]] || die "'emissions broker render' wrote no $CONF"
}

cmd_start() {
    command -v mosquitto >/dev/null || die "mosquitto is not installed: run scripts/setup.sh"
    render
    local pid hash
    pid="$(broker_pid)"
    hash="$(config_hash)"
    if [[ -n "$pid" ]]; then
        if [[ "$(cat "$LOADED_MARK" 2>/dev/null)" != "$hash" ]]; then
            log "Mosquitto configuration changed: reloading (SIGHUP to pid $pid)"
            kill -HUP "$pid"
            printf '%s\n' "$hash" >"$LOADED_MARK"
        else
            log "Mosquitto already running on 127.0.0.1:$MQTT_PORT (pid $pid)"
        fi
        return 0
    fi
    if port_open "$MQTT_PORT"; then
        die "port 127.0.0.1:$MQTT_PORT is taken by another process (pid $(listener_pid)), not this project's Mosquitto: stop it or set EMISSIONS_MQTT_PORT"
    fi
    log "starting Mosquitto on 127.0.0.1:$MQTT_PORT (config: $CONF)"
    rm -f "$PID_FILE"
    mosquitto -d -c "$CONF" || die "mosquitto -d -c $CONF failed (check the configuration and its log)"
    local i
    for ((i = 0; i < 50; i++)); do
        port_open "$MQTT_PORT" && break
        sleep 0.2
    done
    port_open "$MQTT_PORT" || die "Mosquitto started but does not accept connections on 127.0.0.1:$MQTT_PORT (check the log_dest of $CONF)"
    if [[ -z "$(broker_pid)" ]]; then
        # The configuration should set pid_file to $PID_FILE; fall back to the listener.
        pid="$(listener_pid)"
        [[ -n "$pid" ]] || die "Mosquitto runs but its pid is unknown: set pid_file $PID_FILE in $CONF"
        log "warning: $CONF sets no pid_file $PID_FILE; recorded pid $pid"
        printf '%s\n' "$pid" >"$PID_FILE"
    fi
    printf '%s\n' "$hash" >"$LOADED_MARK"
    log "Mosquitto running on 127.0.0.1:$MQTT_PORT (pid $(broker_pid))"
}

cmd_stop() {
    local pid i
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        log "Mosquitto is not running"
        return 0
    fi
    log "stopping Mosquitto (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && die "Mosquitto (pid $pid) did not stop within 10 s"
    rm -f "$PID_FILE" "$LOADED_MARK"
}

cmd_status() {
    local pid
    pid="$(broker_pid)"
    if [[ -n "$pid" ]]; then
        echo "mosquitto: running on 127.0.0.1:$MQTT_PORT (pid $pid, config $CONF)"
    else
        echo "mosquitto: not running"
        return 3
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
