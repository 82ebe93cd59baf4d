#!/usr/bin/env bash
# Sets up everything the service needs on a Debian machine, idempotently: Debian
# packages, TimescaleDB, the Python venv, secrets, the project's own PostgreSQL instance
# (never the system's cluster) and the project's own Mosquitto instance.
# A second run changes nothing: no re-install, no re-init, no restart.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_LOG="$LOG_DIR/postgresql.log"
PG_CONF_NAME="park-emissions.conf"
DB_NAME=emissions
DB_USER=emissions
GRAFANA_DB_USER=emissions_grafana

# Writes stdin to $1 only when the content differs; returns 0 when it wrote.
write_if_changed() {
    local dest="$1" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [[ -f "$dest" ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        return 1
    fi
    cat "$tmp" >"$dest"
    rm -f "$tmp"
    return 0
}

# --- a. Debian packages --------------------------------------------------------------
install_packages() {
    local pkgs=(
        postgresql postgresql-contrib
        cmake build-essential dpkg-dev
        mosquitto mosquitto-clients
        python3 python3-venv
        ca-certificates shellcheck
        # promtool (Prometheus rule tests) and Alertmanager (the alerts' real peer in tests)
        prometheus prometheus-alertmanager
        # The console's browser tests: Playwright drives Debian's headless Chromium
        chromium chromium-driver fonts-dejavu-core
    )
    apt_install_missing "${pkgs[@]}"
    # The server version is only known once `postgresql` is installed.
    detect_pg_major
    apt_install_missing "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
    [[ -x "$PG_BIN/postgres" ]] || die "PostgreSQL $PG_MAJOR server binaries not found in $PG_BIN"
    log "Debian packages in place (PostgreSQL $PG_MAJOR)"
}

# --- b. TimescaleDB: scripts/timescaledb.sh ----------------------------------------------
# shellcheck source=scripts/timescaledb.sh
. "$(dirname "${BASH_SOURCE[0]}")/timescaledb.sh"

# --- c. Python venv --------------------------------------------------------------------
setup_venv() {
    local marker="$VENV/.park-emissions-pyproject.sha256" want out
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating the Python venv in $VENV"
        python3 -m venv --clear "$VENV" || die "python3 -m venv $VENV failed (is python3-venv installed?)"
        rm -f "$marker"
    fi
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements-dev.lock" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" && -x "$VENV/bin/emissions" ]]; then
        log "Python venv up to date"
        return 0
    fi
    # Exactly the pinned, hash-checked versions (scripts/lock.sh writes the lock),
    # then the project itself without resolving anything again.
    log "installing the locked dependencies (requirements-dev.lock) and the project"
    if ! out="$("$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        --require-hashes --no-deps -r "$ROOT/requirements-dev.lock" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 30 >&2
        die "pip install -r requirements-dev.lock failed (see above)"
    fi
    if ! out="$("$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        --no-deps -e "$ROOT" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 30 >&2
        die "pip install -e '$ROOT' failed (see above)"
    fi
    printf '%s\n' "$want" >"$marker"
}

# --- d. Secrets --------------------------------------------------------------------------
setup_secrets() {
    (umask 022 && mkdir -p "$STATE_DIR")
    (umask 077 && mkdir -p "$SECRETS_DIR")
    chmod 700 "$SECRETS_DIR"
    local pwfile
    # db_password: the services' role; grafana_db_password: Grafana's read-only login.
    for pwfile in "$SECRETS_DIR/db_password" "$SECRETS_DIR/grafana_db_password"; do
        if [[ ! -s "$pwfile" ]]; then
            (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$pwfile") \
                || die "could not generate $pwfile"
            log "generated a database password in $pwfile"
        fi
        chmod 600 "$pwfile"
    done
}

# --- e. PostgreSQL instance ---------------------------------------------------------------
pg_psql() {  # superuser psql over the instance's socket; extra args follow
    run_as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN_DIR" -p "$PG_PORT" -U postgres "$@"
}

pg_running() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && run_as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

pg_config_text() {
    cat <<EOF
# Managed by park-emissions scripts/setup.sh: edits are overwritten.
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN_DIR'
max_connections = 200
# Room for TimescaleDB's launcher and one scheduler per database (test databases too).
max_worker_processes = 16
shared_buffers = 512MB
synchronous_commit = on
timezone = 'UTC'
# A hypertable's plan has a scan per chunk; JIT compiled them for seconds (docs/engine.md).
jit = off
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
# Logs go to $PG_LOG through pg_ctl -l.
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

pg_hba_text() {
    cat <<'EOF'
# Managed by park-emissions scripts/setup.sh: edits are overwritten.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  peer
host    all       all   127.0.0.1/32   scram-sha-256
EOF
}

setup_pg_instance() {
    local owner=()
    is_root && owner=(postgres:postgres)
    if is_root && ! getent passwd postgres >/dev/null; then
        die "the 'postgres' OS user does not exist (is the postgresql package installed?)"
    fi

    # The postgres user must be able to reach the data, socket and log directories.
    (umask 022 && mkdir -p "$STATE_DIR" "$LOG_DIR" "$RUN_DIR" "$PGDATA_DIR")
    if ((${#owner[@]})); then
        chown "${owner[0]}" "$RUN_DIR" "$PGDATA_DIR"
        [[ -e "$PG_LOG" ]] || touch "$PG_LOG"
        chown "${owner[0]}" "$PG_LOG"
    fi
    chmod 700 "$PGDATA_DIR"
    chmod 755 "$RUN_DIR"
    run_as_pg test -w "$PGDATA_DIR" \
        || die "the postgres user cannot write $PGDATA_DIR: every parent directory of $STATE_DIR must be searchable by it (set EMISSIONS_STATE_DIR elsewhere)"

    if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
        if [[ -n "$(ls -A "$PGDATA_DIR")" ]]; then
            die "$PGDATA_DIR is not empty but has no PG_VERSION (a failed initdb?): remove it and run again"
        fi
        local locale=C locales
        locales="$(locale -a 2>/dev/null || true)"
        if grep -qix 'c.utf-\?8' <<<"$locales"; then locale=C.UTF-8; fi
        log "initialising the PostgreSQL $PG_MAJOR instance in $PGDATA_DIR"
        local out
        if ! out="$(run_as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --locale="$locale" \
            --auth-local=peer --auth-host=scram-sha-256 2>&1)"; then
            printf '%s\n' "$out" | tail -n 20 >&2
            die "initdb of $PGDATA_DIR failed (see above)"
        fi
    else
        local have
        have="$(cat "$PGDATA_DIR/PG_VERSION")"
        [[ "$have" == "$PG_MAJOR" ]] \
            || die "$PGDATA_DIR holds a PostgreSQL $have instance but the server is $PG_MAJOR: upgrade it (pg_upgrade) or move it away"
    fi

    # Our settings live in a file we own, included at the end of postgresql.conf.
    local changed=0
    if pg_config_text | write_if_changed "$PGDATA_DIR/$PG_CONF_NAME"; then changed=1; fi
    if ! grep -qxF "include_if_exists = '$PG_CONF_NAME'" "$PGDATA_DIR/postgresql.conf"; then
        printf "\n# park-emissions settings\ninclude_if_exists = '%s'\n" "$PG_CONF_NAME" >>"$PGDATA_DIR/postgresql.conf"
        changed=1
    fi
    if pg_hba_text | write_if_changed "$PGDATA_DIR/pg_hba.conf"; then changed=1; fi
    if ((${#owner[@]})); then
        chown "${owner[0]}" "$PGDATA_DIR/$PG_CONF_NAME" "$PGDATA_DIR/pg_hba.conf" "$PGDATA_DIR/postgresql.conf"
    fi
    chmod 600 "$PGDATA_DIR/$PG_CONF_NAME" "$PGDATA_DIR/pg_hba.conf"

    if pg_running; then
        if ((changed)); then
            log "PostgreSQL configuration changed: reloading"
            run_as_pg "$PG_BIN/pg_ctl" reload -D "$PGDATA_DIR" -s >/dev/null
            sleep 1
            local pending
            pending="$(pg_psql -d postgres -Atc "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart")"
            if [[ -n "$pending" ]]; then
                log "settings needing a restart changed ($pending): restarting the instance"
                run_as_pg "$PG_BIN/pg_ctl" restart -D "$PGDATA_DIR" -m fast -w -t 60 -l "$PG_LOG" -s \
                    || die "PostgreSQL restart failed: see $PG_LOG"
            fi
        else
            log "PostgreSQL instance already running on 127.0.0.1:$PG_PORT"
        fi
    else
        if port_open "$PG_PORT"; then
            die "port 127.0.0.1:$PG_PORT is taken by another process: stop it or set EMISSIONS_DB_PORT"
        fi
        log "starting the PostgreSQL instance on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
        run_as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 -s \
            || { tail -n 20 "$PG_LOG" >&2; die "PostgreSQL did not start: see $PG_LOG"; }
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        sleep 0.5
    done
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" \
        || die "PostgreSQL does not accept connections on 127.0.0.1:$PG_PORT: see $PG_LOG"
}

# Creates the extension in $1 when missing and updates it when the installed library is
# newer. ALTER EXTENSION ... UPDATE must be the first command of its session.
ensure_timescaledb_in() {
    local db="$1" state
    state="$(pg_psql -d "$db" -Atc "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '') || '|' || default_version FROM pg_available_extensions WHERE name = 'timescaledb'")"
    [[ -n "$state" ]] || die "the timescaledb extension is not available to PostgreSQL $PG_MAJOR"
    local have="${state%%|*}" want="${state#*|}"
    if [[ -z "$have" ]]; then
        log "creating extension timescaledb $want in database $db"
        pg_psql -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS timescaledb" >/dev/null
    elif [[ "$have" != "$want" ]]; then
        log "updating extension timescaledb $have -> $want in database $db"
        pg_psql -d "$db" -c "ALTER EXTENSION timescaledb UPDATE" >/dev/null
    fi
}

# Sets role $1's password to the one in file $2, only when that one does not already
# work, so a second run changes nothing. Through stdin, so the password shows neither
# in the process list nor in the logs.
ensure_role_password() {
    local role="$1" secret="$2" pw
    pw="$(cat "$secret")"
    if PGPASSWORD="$pw" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" \
        -U "$role" -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
        return 0
    fi
    log "setting the password of role $role (from $secret)"
    local quoted="${pw//\\/\\\\}"
    quoted="${quoted//\'/\'\'}"
    pg_psql -d postgres >/dev/null <<EOF
\\set pw '$quoted'
ALTER ROLE $role PASSWORD :'pw';
EOF
}

setup_database() {
    local has_role
    has_role="$(pg_psql -d postgres -Atc "SELECT count(*) FROM pg_roles WHERE rolname = '$DB_USER'")"
    if [[ "$has_role" == 0 ]]; then
        log "creating role $DB_USER"
        pg_psql -d postgres -c "CREATE ROLE $DB_USER LOGIN CREATEDB"
    fi
    ensure_role_password "$DB_USER" "$SECRETS_DIR/db_password"

    # In template1 first, so every database created later (test databases too) has it.
    ensure_timescaledb_in template1
    local has_db
    has_db="$(pg_psql -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = '$DB_NAME'")"
    if [[ "$has_db" == 0 ]]; then
        log "creating database $DB_NAME owned by $DB_USER"
        pg_psql -d postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
    fi
    ensure_timescaledb_in "$DB_NAME"
    setup_reader_roles

    local license version
    license="$(pg_psql -d "$DB_NAME" -Atc "SHOW timescaledb.license")"
    version="$(pg_psql -d "$DB_NAME" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")"
    printf '%s\n' "$license" | write_if_changed "$STATE_DIR/timescaledb.license" || true
    log "TimescaleDB $version, licence: $license (database $DB_NAME on 127.0.0.1:$PG_PORT)"
}

# Grafana's read-only login, a member of the NOLOGIN group role emissions_reader that
# migration 0006 grants SELECT on the dashboards' tables (never api_keys). Roles are
# cluster-wide: created here, as superuser, once for every database of the instance.
setup_reader_roles() {
    pg_psql -d postgres >/dev/null <<EOF
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'emissions_reader') THEN
        CREATE ROLE emissions_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$GRAFANA_DB_USER') THEN
        CREATE ROLE $GRAFANA_DB_USER LOGIN CONNECTION LIMIT 20 IN ROLE emissions_reader;
        ALTER ROLE $GRAFANA_DB_USER SET default_transaction_read_only = on;
        ALTER ROLE $GRAFANA_DB_USER SET statement_timeout = '60s';
    END IF;
END \$\$;
EOF
    ensure_role_password "$GRAFANA_DB_USER" "$SECRETS_DIR/grafana_db_password"
}

main() {
    log "state directory: $STATE_DIR"
    install_packages
    install_timescaledb
    setup_venv
    setup_secrets
    setup_pg_instance
    setup_database
    "$ROOT/scripts/broker.sh" start
    log "setup complete"
}

main "$@"
