#!/usr/bin/env bash
# The project's own service instances: scripts/services.sh stop|status
# (scripts/setup.sh starts them.) Touches neither the system's PostgreSQL cluster nor
# the system's Mosquitto.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pg_status() {
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]] \
        && run_as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1; then
        echo "postgresql: running on 127.0.0.1:$PG_PORT (data $PGDATA_DIR)"
    else
        echo "postgresql: not running"
        return 3
    fi
}

case "${1:-}" in
    stop)
        "$ROOT/scripts/broker.sh" stop
        if pg_status >/dev/null; then
            log "stopping PostgreSQL ($PGDATA_DIR)"
            run_as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -s
        else
            log "PostgreSQL is not running"
        fi
        ;;
    status)
        rc=0
        pg_status || rc=$?
        "$ROOT/scripts/broker.sh" status || rc=$?
        exit "$rc"
        ;;
    *)
        echo "usage: $0 stop|status" >&2
        exit 2
        ;;
esac
