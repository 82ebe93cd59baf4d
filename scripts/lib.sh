# shellcheck shell=bash
# shellcheck disable=SC2034  # variables used by the scripts that source this file
# Shared settings and helpers for the project's shell scripts. Source it; do not run it.
#
# Environment (all optional, defaults work locally):
#   EMISSIONS_STATE_DIR   where local state lives (database files, broker data, secrets)
#   EMISSIONS_DB_PORT     port of the project's own PostgreSQL instance (default 55432)
#   EMISSIONS_MQTT_PORT   port of the project's own Mosquitto instance (default 11883)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Same default as core/paths.py: keep the two in step.
if [[ -n "${EMISSIONS_STATE_DIR:-}" ]]; then
    STATE_DIR="$EMISSIONS_STATE_DIR"
elif [[ "$(id -u)" -eq 0 ]]; then
    STATE_DIR=/var/lib/park-emissions
else
    STATE_DIR="$HOME/.local/state/park-emissions"
fi
PG_PORT="${EMISSIONS_DB_PORT:-55432}"
MQTT_PORT="${EMISSIONS_MQTT_PORT:-11883}"
# The Python side (core/settings.py) reads the same variables: hand it the same values.
export EMISSIONS_STATE_DIR="$STATE_DIR" EMISSIONS_DB_PORT="$PG_PORT" EMISSIONS_MQTT_PORT="$MQTT_PORT"

PGDATA_DIR="$STATE_DIR/pg"
RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/log"
SECRETS_DIR="$STATE_DIR/secrets"
BROKER_DIR="$STATE_DIR/mosquitto"
VENV="$ROOT/.venv"

export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Major version of the installed PostgreSQL server (highest one if several), else the
# default of this Debian release.
detect_pg_major() {
    local dir major="" v
    for dir in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$dir" ]] || continue
        v="${dir#/usr/lib/postgresql/}"
        v="${v%%/*}"
        if [[ "$v" =~ ^[0-9]+$ ]] && { [[ -z "$major" ]] || ((v > major)); }; then
            major="$v"
        fi
    done
    if [[ -z "$major" ]]; then
        local codename=""
        if [[ -r /etc/os-release ]]; then
            codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
        fi
        case "$codename" in
            trixie) major=17 ;;
            *) major=15 ;;  # bookworm
        esac
    fi
    PG_MAJOR="$major"
    PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
}
detect_pg_major

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# PostgreSQL refuses to run as root: run its tools as the `postgres` OS user when we
# are root. Runs from / so that the postgres user is not left in an unreadable cwd.
run_as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

apt_candidate() {
    # No early exit in awk: it would SIGPIPE apt-cache, fatal under pipefail.
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && !c {c = $2} END {print c}'
}

_APT_UPDATED=0
apt_update_once() {
    ((_APT_UPDATED)) && return 0
    log "apt-get update"
    local out
    if ! out="$(apt-get update 2>&1)"; then
        printf '%s\n' "$out" | tail -n 20 >&2
        die "apt-get update failed (see above): check the apt sources and the network"
    fi
    _APT_UPDATED=1
}

# Install the given Debian packages that are not installed yet (apt-get update once per
# run, only when something is missing).
apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    is_root || die "missing Debian packages (${missing[*]}); run this script as root to install them"
    apt_update_once
    for pkg in "${missing[@]}"; do
        local cand
        cand="$(apt_candidate "$pkg")"
        if [[ -z "$cand" || "$cand" == "(none)" ]]; then
            die "cannot install Debian package '$pkg': no installation candidate in the configured apt sources"
        fi
    done
    log "installing Debian packages: ${missing[*]}"
    local out
    if ! out="$(apt-get install -y --no-install-recommends "${missing[@]}" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 30 >&2
        local why
        why="$(printf '%s\n' "$out" | grep -E '^(E:|dpkg: error)' | head -n 3 | tr '\n' ' ')"
        for pkg in "${missing[@]}"; do
            pkg_installed "$pkg" || die "apt-get install of '$pkg' failed: ${why:-see the output above}"
        done
        die "apt-get install failed: ${why:-see the output above}"
    fi
}
