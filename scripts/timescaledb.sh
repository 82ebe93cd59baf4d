# shellcheck shell=bash
# TimescaleDB for the local PostgreSQL, for scripts/setup.sh (source it; do not run
# it): Debian's binary package when the machine's mirror has one, else built from
# Debian trixie's source package (bookworm has none). Uses lib.sh's settings and
# setup.sh's `write_if_changed`.

TRIXIE_SRC=/etc/apt/sources.list.d/park-emissions-trixie-src.sources

# --- b. TimescaleDB --------------------------------------------------------------------
timescaledb_installed() {
    local pg_config="$PG_BIN/pg_config" share lib
    [[ -x "$pg_config" ]] || return 1
    share="$("$pg_config" --sharedir)"
    lib="$("$pg_config" --pkglibdir)"
    [[ -f "$share/extension/timescaledb.control" && -f "$lib/timescaledb.so" ]]
}

# URI of the machine's configured Debian mirror (not the security archive).
debian_mirror_uri() {
    local uri=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        uri="$(awk 'tolower($1) == "uris:" && $2 !~ /security/ {print $2; exit}' \
            /etc/apt/sources.list.d/debian.sources)"
        [[ -n "$uri" ]] || uri="$(awk 'tolower($1) == "uris:" {print $2; exit}' \
            /etc/apt/sources.list.d/debian.sources)"
    fi
    if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
        # deb [options] URI suite components...
        uri="$(awk '$1 == "deb" {
                   for (i = 2; i <= NF; i++) {
                       if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; continue }
                       if ($i !~ /security/) { print $i; exit }
                       break
                   }
               }' /etc/apt/sources.list)"
    fi
    printf '%s' "$uri"
}

build_timescaledb_from_source() {
    local uri
    uri="$(debian_mirror_uri)"
    [[ -n "$uri" ]] || die "TimescaleDB: no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list to fetch its source from"
    [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] \
        || die "TimescaleDB: /usr/share/keyrings/debian-archive-keyring.gpg is missing (install debian-archive-keyring)"
    if write_if_changed "$TRIXIE_SRC" <<EOF
# Written by park-emissions scripts/setup.sh: source packages of Debian trixie, used to
# build TimescaleDB for the local PostgreSQL when no binary package is available.
Types: deb-src
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    then
        log "TimescaleDB: added $TRIXIE_SRC (deb-src trixie main from $uri)"
    fi
    _APT_UPDATED=0
    apt_update_once

    local build="$STATE_DIR/build/timescaledb" src out
    rm -rf "$build"
    mkdir -p "$build"
    log "TimescaleDB: fetching the Debian trixie source package"
    if ! out="$(cd "$build" && apt-get source -q timescaledb/trixie 2>&1)"; then
        printf '%s\n' "$out" | tail -n 20 >&2
        die "TimescaleDB: 'apt-get source timescaledb/trixie' failed (see above)"
    fi
    src="$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)"
    [[ -n "$src" ]] || die "TimescaleDB: source package unpacked to no timescaledb-* directory in $build"

    log "TimescaleDB: building $(basename "$src") (Apache edition) against PostgreSQL $PG_MAJOR"
    if ! cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release \
        -DPG_CONFIG="$PG_BIN/pg_config" \
        -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF -DAPACHE_ONLY=1 \
        -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
        >"$build/cmake.log" 2>&1; then
        tail -n 30 "$build/cmake.log" >&2
        die "TimescaleDB: cmake configuration failed (full log: $build/cmake.log)"
    fi
    if ! make -C "$src/build" -j"$(nproc)" >"$build/make.log" 2>&1; then
        tail -n 30 "$build/make.log" >&2
        die "TimescaleDB: compilation failed (full log: $build/make.log)"
    fi
    if ! make -C "$src/build" install >"$build/install.log" 2>&1; then
        tail -n 30 "$build/install.log" >&2
        die "TimescaleDB: make install failed (full log: $build/install.log)"
    fi
    rm -rf "$src"  # the build tree is large; the logs and the source package stay
}

install_timescaledb() {
    if timescaledb_installed; then
        log "TimescaleDB already installed for PostgreSQL $PG_MAJOR"
        return 0
    fi
    is_root || die "TimescaleDB is not installed for PostgreSQL $PG_MAJOR; run this script as root to install it"
    local pkg="postgresql-$PG_MAJOR-timescaledb" cand
    cand="$(apt_candidate "$pkg")"
    if [[ -z "$cand" || "$cand" == "(none)" ]]; then
        apt_update_once
        cand="$(apt_candidate "$pkg")"
    fi
    if [[ -n "$cand" && "$cand" != "(none)" ]]; then
        apt_install_missing "$pkg"
    else
        build_timescaledb_from_source
    fi
    timescaledb_installed || die "TimescaleDB: installation finished but timescaledb.control / timescaledb.so are not in $PG_BIN/pg_config's directories"
    log "TimescaleDB installed"
}
